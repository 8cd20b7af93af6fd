"""Lookup building blocks, against recorded shapes (responses) — no Streamlit."""
from __future__ import annotations

from datetime import datetime

import pytest
import responses

from cmlib.client import CampaignMonitor, ClientOptions
from cmlib.errors import AuthenticationError
from cmlib.lookup import (
    CASE_FAILED,
    CASE_FULL,
    CASE_NO_CAMPAIGNS,
    CASE_NO_LISTS,
    Activity,
    LookupService,
    find_reason,
    received_campaigns,
)
from cmlib.models import Campaign, HistoryAction, HistoryItem
from cmlib.retry import RetryPolicy

BASE = "https://api.test/api/v3.3"
CID = "client1"


def camp(cid, name, sent):
    return Campaign(campaign_id=cid, name=name, subject=f"Subject {name}", sent_date=sent,
                    web_version_url=f"https://cm/t/{cid}")


def item(cid, *events):
    return HistoryItem(id=cid, type="Campaign", name=cid,
                       actions=tuple(HistoryAction(e, d, "1.1.1.1", det) for e, d, det in events))


D1, D2, D3, D4 = (datetime(2026, m, 1, 10) for m in (1, 2, 3, 4))


def test_received_campaigns_newest_first_and_counted_once_across_lists():
    idx = {c.campaign_id: c for c in [camp("a", "A", D1), camp("b", "B", D2), camp("c", "C", D3), camp("d", "D", D4)]}
    open_b = ("Open", D2, "")
    h = {
        "L1": [item("a"), item("b", open_b), item("d", ("Click", D4, "https://u"), ("Open", D4, ""))],
        "L2": [item("b", open_b), item("c")],  # b reported by both lists with the same open
    }
    got = received_campaigns(h, idx)
    assert [c.campaign_id for c in got] == ["d", "c", "b", "a"]
    b = got[2]
    assert b.opens == 1 and set(b.list_ids) == {"L1", "L2"}
    act = Activity.of(got)
    assert (act.received, act.opened, act.clicked) == (4, 2, 1)
    assert act.open_rate == 0.5 and act.click_rate == 0.25
    assert act.avg_opens == 0.5 and act.avg_clicks == 0.25


def test_unknown_history_id_is_dated_by_first_action():
    got = received_campaigns({"L": [item("journey-1", ("Open", D2, ""))]}, {})
    assert got[0].sent == D2 and got[0].subject == "journey-1" and got[0].web_version_url == ""


def test_empty_activity_is_zero_not_division_error():
    a = Activity.of(())
    assert (a.open_rate, a.click_rate, a.avg_opens, a.avg_clicks) == (0, 0, 0, 0)


def test_reason_found_in_own_list_then_other_lists():
    h = {"L1": [item("a", ("Open", D1, ""), ("Unsubscribe", D2, ""))], "L2": []}
    r = find_reason("Unsubscribed", "L1", h, {"L1": "News", "L2": "Offers"})
    assert r.event == "Unsubscribe" and r.date == D2 and r.campaign_id == "a" and r.via_list_name is None
    r2 = find_reason("Unsubscribed", "L2", h, {"L1": "News", "L2": "Offers"})
    assert r2.via_list_name == "News"  # AllClientLists cascade recorded on the other list
    # ...but only when that event is when this list's state changed
    assert find_reason("Unsubscribed", "L2", h, {"L1": "News"}, state_changed=D2) is not None
    assert find_reason("Unsubscribed", "L2", h, {"L1": "News"}, state_changed=D3) is None
    assert find_reason("Active", "L1", h, {}) is None
    assert find_reason("Bounced", "L2", h, {}) is None


# ---------------------------------------------------------------- the service over HTTP
def svc():
    c = CampaignMonitor("k", BASE, options=ClientOptions(rate=None, retry=RetryPolicy(max_attempts=1)), cache=None)
    return LookupService(c, CID)


def lfe(*rows):
    return [{"ListID": lid, "ListName": n, "SubscriberState": s, "DateSubscriberAdded": "2025-01-01 09:00"}
            for lid, n, s in rows]


def mock_campaigns():
    responses.get(f"{BASE}/clients/{CID}/campaigns.json", json={
        "Results": [{"CampaignID": "c1", "Name": "C1", "Subject": "Hello", "SentDate": "2026-01-05 10:00:00",
                     "WebVersionURL": "https://cm/t/c1", "TotalRecipients": 10}],
        "ResultsOrderedBy": "SentDate", "OrderDirection": "desc", "PageNumber": 1, "PageSize": 1000,
        "RecordsOnThisPage": 1, "TotalNumberOfRecords": 1, "NumberOfPages": 1})


def mock_list(lid, setting="OnlyThisList"):
    responses.get(f"{BASE}/lists/{lid}.json", json={"ListID": lid, "Title": lid, "ConfirmedOptIn": False,
                                                    "UnsubscribeSetting": setting})


def mock_sub(lid, email, state, history):
    responses.get(f"{BASE}/subscribers/{lid}.json", json={
        "EmailAddress": email, "Name": "N", "Date": "2026-01-06 10:00:00", "ListJoinedDate": "2025-01-01 09:00:00",
        "State": state, "CustomFields": [], "ReadsEmailWith": "", "ConsentToTrack": "Yes"})
    responses.get(f"{BASE}/subscribers/{lid}/history.json", json=history)


@responses.activate
def test_cases_no_list_no_campaigns_full():
    mock_campaigns()
    url = f"{BASE}/clients/{CID}/listsforemail.json"
    responses.get(url, json=[], match=[responses.matchers.query_param_matcher({"email": "none@x.com"})])
    responses.get(url, json=lfe(("L1", "News", "Active")),
                  match=[responses.matchers.query_param_matcher({"email": "p@x.com"})])
    mock_list("L1", "AllClientLists")
    mock_sub("L1", "p@x.com", "Active", [{"ID": "c1", "Type": "Campaign", "Name": "C1", "Actions": [
        {"Event": "Open", "Date": "2026-01-05 11:00:00", "IPAddress": "", "Detail": ""}]}])
    none, p = svc().lookup_many(["none@x.com", "p@x.com"])
    assert none.case == CASE_NO_LISTS
    assert p.case == CASE_FULL
    assert p.lists[0].unsubscribes_from_all is True and p.lists[0].consent_to_track == "Yes"
    assert p.last_campaigns()[0].subject == "Hello" and p.last_campaigns()[0].opened
    doc = p.to_json()
    assert set(doc) >= {"email", "lists", "campaigns", "activity", "errors"}
    assert doc["lists"][0] == {**doc["lists"][0], "list_id": "L1", "list_name": "News", "state": "Active",
                               "state_changed": "2026-01-06T10:00:00", "joined": "2025-01-01T09:00:00"}
    assert doc["campaigns"][0]["opened"] is True and doc["activity"]["open_rate"] == 1.0


@responses.activate
def test_on_lists_never_mailed():
    mock_campaigns()
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json=lfe(("L1", "News", "Unconfirmed")))
    mock_list("L1")
    mock_sub("L1", "p@x.com", "Unconfirmed", [])
    (p,) = svc().lookup_many(["p@x.com"])
    assert p.case == CASE_NO_CAMPAIGNS and p.lists[0].state == "Unconfirmed"


@responses.activate
def test_one_list_failing_still_renders_the_rest():
    mock_campaigns()
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json",
                  json=lfe(("L1", "News", "Active"), ("L2", "Broken", "Active")))
    mock_list("L1")
    mock_list("L2")
    mock_sub("L1", "p@x.com", "Active", [])
    responses.get(f"{BASE}/subscribers/L2.json", json={"Code": 500, "Message": "Sorry"}, status=500)
    responses.get(f"{BASE}/subscribers/L2/history.json", json={"Code": 500, "Message": "Sorry"}, status=500)
    (p,) = svc().lookup_many(["p@x.com"])
    assert not p.failed and len(p.lists) == 2
    assert p.lists[0].problems == ()
    msgs = [pr.message for pr in p.lists[1].problems]
    assert msgs and all("p@x.com" in m and "Broken" in m and "Code 500" in m for m in msgs)
    assert p.to_json()["errors"]


@responses.activate
def test_address_failure_is_isolated_and_auth_failure_raises():
    mock_campaigns()
    url = f"{BASE}/clients/{CID}/listsforemail.json"
    responses.get(url, json={"Code": 1, "Message": "Invalid Email Address"}, status=400,
                  match=[responses.matchers.query_param_matcher({"email": "weird@x.com"})])
    responses.get(url, json=[], match=[responses.matchers.query_param_matcher({"email": "ok@x.com"})])
    bad, ok = svc().lookup_many(["weird@x.com", "ok@x.com"])
    assert bad.case == CASE_FAILED and "weird@x.com" in bad.problems[0].message
    assert ok.case == CASE_NO_LISTS
    responses.replace(responses.GET, f"{BASE}/clients/{CID}/campaigns.json",
                      json={"Code": 100, "Message": "Invalid API Key"}, status=401)
    with pytest.raises(AuthenticationError):
        svc().lookup_many(["ok@x.com"])


class Tick:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


@responses.activate
def test_profiles_are_remembered_until_expiry_or_invalidation():
    mock_campaigns()
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json=[])
    c = CampaignMonitor("k", BASE, options=ClientOptions(rate=None), cache=None)
    clock = Tick()
    s = LookupService(c, CID, memo_ttl=60, clock=clock)
    first = s.lookup("p@x.com")
    calls = len(responses.calls)
    assert s.lookup("p@x.com") is first and len(responses.calls) == calls  # no request at all
    assert s.lookup("p@x.com", fresh=True) is not first  # refresh bypasses the memo
    calls = len(responses.calls)
    c.invalidate_email("P@X.com")  # e.g. after a write
    s.lookup("p@x.com")
    assert len(responses.calls) > calls
    calls = len(responses.calls)
    clock.t = 61
    s.lookup("p@x.com")
    assert len(responses.calls) > calls


@responses.activate
def test_profiles_with_problems_are_not_remembered():
    mock_campaigns()
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json={"Code": 500, "Message": "x"}, status=500)
    c = CampaignMonitor("k", BASE, options=ClientOptions(rate=None, retry=RetryPolicy(max_attempts=1)), cache=None)
    s = LookupService(c, CID, memo_ttl=60)
    assert s.lookup("p@x.com").failed
    calls = len(responses.calls)
    s.lookup("p@x.com")
    assert len(responses.calls) > calls


# ---------------------------------------------------------------- a hung or dead API, against the sandbox
def test_a_lookup_with_every_request_hanging_fails_within_its_deadline_with_the_reason(sandbox):
    """Before: read timeout × attempts (212 s with the defaults). The sandbox holds every answer
    2 s; a 0.5 s interactive deadline ends the lookup first, and the tab says why."""
    from cmlib.sandbox import DEMO_CUSTOMERS

    sandbox.set_faults(hang_rate=1.0, hang_seconds=2)
    opts = ClientOptions(rate=None, read_timeout=5.0, interactive_deadline=0.5,
                         retry=RetryPolicy(max_attempts=3, base_delay=0.01))
    c = CampaignMonitor(sandbox.client_api_key, sandbox.base_url, options=opts, cache=None)
    email = DEMO_CUSTOMERS["with_campaigns"][0]
    [profile] = LookupService(c, sandbox.main_client_id).lookup_many([email])
    assert profile.failed
    message = profile.problems[0].message
    assert email in message and "no answer within the 0.5 s allowed (read timeout after" in message


def test_a_lookup_while_the_api_is_down_names_the_outage(sandbox):
    from cmlib.sandbox import DEMO_CUSTOMERS

    sandbox.set_faults(down=True)
    opts = ClientOptions(rate=None, retry=RetryPolicy(max_attempts=3, base_delay=0.01), breaker_threshold=2)
    c = CampaignMonitor(sandbox.client_api_key, sandbox.base_url, options=opts, cache=None)
    svc = LookupService(c, sandbox.main_client_id)
    email = DEMO_CUSTOMERS["with_campaigns"][0]
    svc.lookup_many([email])  # the failures open the breaker
    sandbox.reset_counts()
    [profile] = svc.lookup_many([email])
    assert profile.failed and sandbox.requests_served == 0  # failed fast: nothing was sent
    assert "Campaign Monitor is not answering since " in profile.problems[0].message


# ---------------------------------------------------------------- the suppression list, read once
def mock_suppression(pages, total=None):
    """``pages``: a list of pages, each a list of (email, reason, date)."""
    total = total if total is not None else len(pages)
    for n, rows in enumerate(pages, start=1):
        responses.get(f"{BASE}/clients/{CID}/suppressionlist.json", json={
            "Results": [{"EmailAddress": e, "SuppressionReason": r, "Date": d, "State": "Suppressed"}
                        for e, r, d in rows],
            "PageNumber": n, "PageSize": 2, "RecordsOnThisPage": len(rows), "TotalNumberOfRecords": 9,
            "NumberOfPages": total}, match=[responses.matchers.query_param_matcher({"page": str(n)},
                                                                                   strict_match=False)])


def suppression_calls():
    return [c for c in responses.calls if "suppressionlist" in c.request.url]


@responses.activate
def test_one_pass_over_the_suppression_list_answers_every_address():
    mock_campaigns()
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json=[])
    mock_suppression([[("A@x.com", "Bounced", "2025-03-01 10:00:00"), ("b@x.com", "Unsubscribed", "")],
                      [("c@x.com", "Spam Complaint", "2025-04-01 08:00:00")]])
    a, b, c, d = svc().lookup_many(["a@X.com", "b@x.com", "c@x.com", "d@x.com"], suppression=True)
    assert (a.suppression.reason, a.suppression.date) == ("Bounced", datetime(2025, 3, 1, 10))
    assert b.suppression.reason == "Unsubscribed" and c.suppression.reason == "Spam Complaint"
    assert d.suppression is None and not d.problems
    assert len(suppression_calls()) == 2  # each page once, for four addresses


@responses.activate
def test_without_asking_no_suppression_call_is_made():
    mock_campaigns()
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json=[])
    (p,) = svc().lookup_many(["a@x.com"])
    assert p.suppression is None and not suppression_calls()


@responses.activate
def test_an_unreadable_suppression_list_is_a_problem_not_a_failure():
    mock_campaigns()
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json=[])
    responses.get(f"{BASE}/clients/{CID}/suppressionlist.json", json={"Code": 500, "Message": "Sorry"}, status=500)
    (p,) = svc().lookup_many(["a@x.com"], suppression=True)
    assert not p.failed and p.suppression is None
    [problem] = p.problems
    assert problem.where == "suppression" and "a@x.com" in problem.message and "Code 500" in problem.message


@responses.activate
def test_the_index_is_kept_and_a_write_makes_the_next_read_fresh():
    mock_campaigns()
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json=[])
    mock_suppression([[("a@x.com", "Bounced", "2025-03-01 10:00:00")]])
    c = CampaignMonitor("k", BASE, options=ClientOptions(rate=None, retry=RetryPolicy(max_attempts=1)), cache=None)
    clock = Tick()
    s = LookupService(c, CID, memo_ttl=60, clock=clock)
    s.suppression.ttl = 120  # as with the HTTP cache on (off here: cache=None)
    assert s.lookup_many(["a@x.com"], suppression=True)[0].suppression is not None
    assert s.lookup_many(["a@x.com"], suppression=True)[0].suppression is not None
    assert len(suppression_calls()) == 1  # kept: the second lookup read nothing
    c.invalidate_email("a@x.com")  # a write (e.g. a Resubscribe that took it off the list)
    s.lookup_many(["a@x.com"], suppression=True)
    assert len(suppression_calls()) == 2
    clock.t = 121
    s.lookup_many(["a@x.com"], suppression=True)
    assert len(suppression_calls()) == 3  # expired
    s.close()
    assert c.invalidation_listener_count == 0


def test_a_build_overtaken_by_a_write_is_not_kept():
    from cmlib.models import Page, SuppressedAddress
    from cmlib.suppression import SuppressionMemo

    class Source:
        def __init__(self):
            self.calls: list[bool] = []
            self.memo: SuppressionMemo | None = None

        def suppression_list(self, client_id, *, page=1, page_size=1000, fresh=False):
            self.calls.append(fresh)
            if len(self.calls) == 1 and self.memo is not None:
                self.memo.invalidate()  # a write lands while the first build reads
            return Page((SuppressedAddress("a@x.com", "Bounced", None),), 1, 1000, 1, 1, 1)

    src = Source()
    memo = SuppressionMemo(src, CID, ttl=120, clock=Tick())
    src.memo = memo
    assert "A@X.com" in memo.get()
    assert not memo.held  # overtaken: returned, not kept
    memo.get()
    assert src.calls == [False, True]  # the next read bypasses the HTTP cache
    assert memo.held
    memo.get()
    assert len(src.calls) == 2


def test_the_index_marks_itself_incomplete_past_its_page_limit():
    from cmlib.models import Page, SuppressedAddress
    from cmlib.suppression import SuppressionIndex

    class Source:
        def suppression_list(self, client_id, *, page=1, page_size=1000, fresh=False):
            return Page((SuppressedAddress(f"p{page}@x.com", "Bounced", None),), page, 1, 1, 5, 5)

    index = SuppressionIndex.for_client(Source(), CID, max_pages=3)
    assert len(index) == 3 and not index.complete and index.pages_read == 3
    assert index.get("P2@x.com") is not None and "p5@x.com" not in index


def test_suppressed_demo_customer_against_the_sandbox(sandbox):
    from cmlib.sandbox import DEMO_CUSTOMERS

    c = CampaignMonitor(sandbox.client_api_key, sandbox.base_url, options=ClientOptions(rate=None), cache=None)
    email = DEMO_CUSTOMERS["suppressed"][0]
    supp, anna = LookupService(c, sandbox.main_client_id).lookup_many([email, "anna@example.com"], suppression=True)
    assert supp.case == CASE_NO_LISTS and supp.suppression is not None
    assert supp.suppression.reason == "Unsubscribed" and supp.suppression.date is not None
    assert anna.suppression is None and not anna.all_problems()


# ---------------------------------------------------------------- the client's time zone
@responses.activate
def test_the_clients_zone_is_read_alongside_the_lookup_and_kept():
    mock_campaigns()
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json=[])
    responses.get(f"{BASE}/clients/{CID}.json", json={"BasicDetails": {"ClientID": CID,
                                                                        "TimeZone": "(GMT+03:00) Moscow"}})
    c = CampaignMonitor("k", BASE, options=ClientOptions(rate=None, retry=RetryPolicy(max_attempts=1)), cache=None)
    s = LookupService(c, CID, clock=Tick())
    s.lookup_many(["a@x.com"], time_zone=True)
    details = [x for x in responses.calls if x.request.url.startswith(f"{BASE}/clients/{CID}.json")]
    assert len(details) == 1  # in the lookup's first wave, not after it
    assert s.client_time_zone() == "(GMT+03:00) Moscow"
    assert len([x for x in responses.calls if x.request.url.startswith(f"{BASE}/clients/{CID}.json")]) == 1


@responses.activate
def test_a_zone_that_cannot_be_read_is_not_asked_for_on_every_rerun():
    responses.get(f"{BASE}/clients/{CID}.json", json={"Code": 500, "Message": "Sorry"}, status=500)
    c = CampaignMonitor("k", BASE, options=ClientOptions(rate=None, retry=RetryPolicy(max_attempts=1)), cache=None)
    clock = Tick()
    s = LookupService(c, CID, clock=clock)
    assert s.client_time_zone() is None and s.client_time_zone() is None
    assert len(responses.calls) == 1
    clock.t = 61
    assert s.client_time_zone() is None
    assert len(responses.calls) == 2
