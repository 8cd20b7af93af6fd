"""Contract: the sandbox answers like Campaign Monitor, for our client and for the official wrapper.

Three angles: (1) every response has the keys of the matching fixture in tests/data/cm-fixtures
(the official wrapper's real bodies); (2) our client makes every call and gets every documented
error code as the right exception; (3) the official ``createsend`` package reads the same data
without error, so the sandbox is not merely shaped to fit our own parser.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from cmlib.errors import (
    APIError,
    AuthenticationError,
    InvalidEmailError,
    NotInListError,
    RateLimitedError,
    ServerError,
    SubscriberStateError,
    SuppressedError,
)
from cmlib.models import KNOWN_STATES
from cmlib.sandbox import DEMO_CUSTOMERS, Sandbox
from tests.fixtures import fixture
from tests.sandbox_fixtures import make_client

ALL_DEMO_ADDRESSES = [a for case in DEMO_CUSTOMERS.values() for a in case]


def _keys(d: dict) -> set[str]:
    return set(d)


def _api_date(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
        return True
    except ValueError:
        return False


def _list_id(sb: Sandbox, name: str) -> str:
    return sb.data.list_by_name(sb.main_client_id, name).list_id


# ---------------------------------------------------------------------------- (1) shapes
def test_account_and_list_shapes_match_fixtures(sandbox, raw):
    cid = sandbox.main_client_id
    clients = raw("GET", "/clients.json").json()
    assert _keys(clients[0]) == _keys(fixture("clients.json")[0])
    details, want = raw("GET", f"/clients/{cid}.json").json(), fixture("client_details.json")
    assert _keys(details) == _keys(want)
    for part in ("AccessDetails", "BasicDetails", "BillingDetails"):
        assert _keys(details[part]) == _keys(want[part])
        assert all(type(details[part][k]) is type(want[part][k]) for k in want[part])
    lists = raw("GET", f"/clients/{cid}/lists.json").json()
    assert _keys(lists[0]) == _keys(fixture("lists.json")[0])
    ld, want = raw("GET", f"/lists/{lists[0]['ListID']}.json").json(), fixture("list_details.json")
    assert _keys(ld) == _keys(want) and all(type(ld[k]) is type(want[k]) for k in want)


def test_subscriber_shapes_match_fixtures(sandbox, raw):
    email = DEMO_CUSTOMERS["with_campaigns"][0]
    rows = raw("GET", f"/clients/{sandbox.main_client_id}/listsforemail.json", params={"email": email}).json()
    assert _keys(rows[0]) == _keys(fixture("listsforemail.json")[0])
    assert all(_api_date(r["DateSubscriberAdded"]) and r["SubscriberState"] in KNOWN_STATES for r in rows)
    lid = rows[0]["ListID"]
    plain = raw("GET", f"/subscribers/{lid}.json", params={"email": email}).json()
    assert _keys(plain) == _keys(fixture("subscriber_details.json"))
    tracked = raw("GET", f"/subscribers/{lid}.json",
                  params={"email": email, "includetrackingpreference": "true"}).json()
    assert _keys(tracked) == _keys(fixture("subscriber_details_with_tracking_preference.json"))
    assert _keys(tracked["CustomFields"][0]) == {"Key", "Value"}
    assert all(isinstance(f["Value"], str) for f in tracked["CustomFields"])
    assert _api_date(tracked["Date"]) and _api_date(tracked["ListJoinedDate"])
    history, want = raw("GET", f"/subscribers/{lid}/history.json", params={"email": email}).json(), \
        fixture("subscriber_history.json")
    assert _keys(history[0]) == _keys(want[0])
    action = next(a for item in history for a in item["Actions"])
    assert _keys(action) == _keys(want[0]["Actions"][0]) and _api_date(action["Date"])
    dates = [a["Date"] for a in history[0]["Actions"]]
    assert dates == sorted(dates, reverse=True)  # newest first, like the fixture


def test_paged_shapes_match_fixtures(sandbox, raw):
    cid = sandbox.main_client_id
    camps, want = raw("GET", f"/clients/{cid}/campaigns.json").json(), fixture("campaigns.json")
    assert _keys(camps) == _keys(want)
    tagged = next(c for c in camps["Results"] if "Tags" in c)
    assert _keys(tagged) == _keys(want["Results"][0])
    assert isinstance(tagged["TotalRecipients"], int) and _api_date(tagged["SentDate"])
    supp, want = raw("GET", f"/clients/{cid}/suppressionlist.json").json(), fixture("suppressionlist.json")
    assert _keys(supp) == _keys(want) and _keys(supp["Results"][0]) == _keys(want["Results"][0])
    news = _list_id(sandbox, "Newsletter")
    active, want = raw("GET", f"/lists/{news}/active.json").json(), fixture("active_subscribers.json")
    assert _keys(active) == _keys(want) and _keys(active["Results"][0]) == _keys(want["Results"][0])
    for state in ("unconfirmed", "unsubscribed", "bounced", "deleted"):
        assert raw("GET", f"/lists/{news}/{state}.json").status_code == 200


def test_add_answers_a_json_string_like_the_fixture(sandbox, raw):
    news = _list_id(sandbox, "Newsletter")
    r = raw("POST", f"/subscribers/{news}.json",
            json={"EmailAddress": "subscriber@example.com", "Name": "S", "CustomFields": [], "Resubscribe": False,
                  "RestartSubscriptionBasedAutoresponders": False, "ConsentToTrack": "Yes"})
    assert r.status_code == 201 and r.json() == fixture("add_subscriber.json")
    assert r.headers["Content-Type"].startswith("application/json")


def test_error_body_shape(sandbox, raw):
    r = raw("GET", f"/subscribers/{_list_id(sandbox, 'Newsletter')}.json", params={"email": "nobody@example.com"})
    assert r.status_code == 400 and _keys(r.json()) == _keys(fixture("custom_api_error.json"))
    assert r.headers["Content-Type"].startswith("application/json")


# ---------------------------------------------------------------------------- (2) our client
def test_our_client_every_read_call(cm, sandbox):
    cid, d = sandbox.main_client_id, sandbox.data
    assert [c.client_id for c in cm.clients()] == [sandbox.main_client_id, sandbox.other_client_id]
    info = cm.client_details(cid)
    assert info.company_name == d.client(cid).name and "ApiKey" not in info.raw
    lists = cm.lists(cid)
    assert [(x.list_id, x.name) for x in lists] == [(x.list_id, x.name) for x in d.lists_of(cid)]
    for ref in lists:
        detail = cm.list_details(ref.list_id)
        want = d.get_list(ref.list_id)
        assert (detail.title, detail.confirmed_opt_in, detail.unsubscribe_setting) == \
            (want.name, want.confirmed_opt_in, want.unsubscribe_setting)
    email = DEMO_CUSTOMERS["with_campaigns"][0]
    memberships = cm.lists_for_email(cid, email)
    assert [(m.list_id, m.list_name, m.state, m.date_added) for m in memberships] == d.memberships(cid, email)
    for m in memberships:
        sub = cm.subscriber(m.list_id, email)
        rec = d.record(m.list_id, email)
        assert (sub.email, sub.state, sub.state_changed, sub.joined, sub.consent_to_track) == \
            (rec.email, rec.state, rec.date, rec.joined, rec.consent_to_track)
        assert [item.raw for item in cm.history(m.list_id, email)] == d.history(m.list_id, email)
    campaigns = list(cm.iter_campaigns(cid, page_size=10))
    assert [c.campaign_id for c in campaigns] == [c.campaign_id for c in d.sent_campaigns(cid)]
    supp = cm.suppression_list(cid)
    assert {s.email for s in supp.results} == {e.email for e in d.suppression(cid)}
    assert cm.is_suppressed(cid, DEMO_CUSTOMERS["suppressed"][0].upper()) is not None


def test_our_client_every_write_call(cm, sandbox):
    news = _list_id(sandbox, "Newsletter")
    assert cm.add_subscriber(news, "writer@example.com", name="W", consent_to_track="Yes",
                             custom_fields=[{"Key": "City", "Value": "Kazan"}]) == "writer@example.com"
    assert sandbox.data.state_of(news, "writer@example.com") == "Active"
    assert cm.unsubscribe(news, "writer@example.com") is None
    assert sandbox.data.state_of(news, "writer@example.com") == "Unsubscribed"
    assert cm.delete_subscriber(news, "writer@example.com") is None
    assert sandbox.data.state_of(news, "writer@example.com") == "Deleted"
    assert sandbox.request_counts["add"] == 1 and sandbox.request_counts["unsubscribe"] == 1
    assert sandbox.request_counts["delete"] == 1


def _error_cases(sb: Sandbox) -> list[tuple[str, Any, type, int, int]]:
    cid, other = sb.main_client_id, sb.other_client_id
    news = _list_id(sb, "Newsletter")
    account = make_client(sb)
    client_key = make_client(sb, sb.client_api_key)
    wrong = make_client(sb, "not-a-key")
    bounced = DEMO_CUSTOMERS["three_addresses"][2]
    unsub = DEMO_CUSTOMERS["all_lists_unsubscribed"][0]
    sb.data.set_state(news, "deleted.one@example.com", "Deleted")
    return [
        ("1 query", lambda: account.lists_for_email(cid, "no-at-sign"), InvalidEmailError, 400, 1),
        ("1 body", lambda: account.add_subscriber(news, "x y@example.com", consent_to_track="Yes"),
         InvalidEmailError, 400, 1),
        ("100", lambda: wrong.clients(), AuthenticationError, 401, 100),
        ("102", lambda: client_key.lists(other), AuthenticationError, 401, 102),
        ("101", lambda: account.list_details("f" * 32), APIError, 400, 101),
        ("203", lambda: account.subscriber(news, "nobody@example.com"), NotInListError, 400, 203),
        ("204", lambda: account.add_subscriber(news, DEMO_CUSTOMERS["suppressed"][0], consent_to_track="Yes"),
         SuppressedError, 400, 204),
        ("205", lambda: account.add_subscriber(news, "deleted.one@example.com", consent_to_track="Yes"),
         SubscriberStateError, 400, 205),
        ("206", lambda: account.add_subscriber(news, unsub, consent_to_track="Yes"), SubscriberStateError, 400, 206),
        ("207", lambda: account.add_subscriber(news, bounced, consent_to_track="Yes"), SubscriberStateError, 400, 207),
        ("800", lambda: account.campaigns(cid, page=0), APIError, 400, 800),
        ("801", lambda: account.campaigns(cid, page_size=5), APIError, 400, 801),
        ("803", lambda: account.campaigns(cid, order_direction="sideways"), APIError, 400, 803),
    ]


def test_our_client_maps_every_error_code(sandbox):
    for name, call, cls, status, code in _error_cases(sandbox):
        with pytest.raises(cls) as exc:
            call()
        assert (exc.value.status, exc.value.code) == (status, code), name
        assert sandbox.account_api_key not in str(exc.value) and sandbox.client_api_key not in str(exc.value)


def test_our_client_sees_code_50_without_auth_header(sandbox, raw):
    r = raw("GET", f"/clients/{sandbox.main_client_id}/lists.json", auth=None)
    assert r.status_code == 401 and r.json()["Code"] == 50


def test_our_client_rate_limited_and_server_errors(sandbox):
    client = make_client(sandbox)
    sandbox.set_faults(rate_limit="2/s")
    client.clients()
    client.clients()
    with pytest.raises(RateLimitedError) as exc:
        client.clients()
    assert exc.value.status == 429 and exc.value.code == 429 and exc.value.reset_seconds is not None
    sandbox.reset_faults()
    sandbox.faults.fail_list_ids = {_list_id(sandbox, "Newsletter")}
    with pytest.raises(ServerError) as exc:
        client.list_details(_list_id(sandbox, "Newsletter"))
    assert (exc.value.status, exc.value.code, exc.value.message) == (500, 500, "Sorry, we've run into a problem")


# ---------------------------------------------------------------------------- (3) createsend
def test_createsend_reads_the_same_account(sandbox, cm, createsend_auth):
    import createsend

    cid = sandbox.main_client_id
    assert [(c.ClientID, c.Name) for c in createsend.CreateSend(createsend_auth).clients()] == \
        [(c.client_id, c.name) for c in cm.clients()]
    cs_client = createsend.Client(createsend_auth, cid)
    assert cs_client.details().BasicDetails.CompanyName == cm.client_details(cid).company_name
    cs_lists = cs_client.lists()
    assert [(x.ListID, x.Name) for x in cs_lists] == [(x.list_id, x.name) for x in cm.lists(cid)]
    for x in cs_lists:
        cs_detail, ours = createsend.List(createsend_auth, x.ListID).details(), cm.list_details(x.ListID)
        assert (cs_detail.Title, cs_detail.ConfirmedOptIn, cs_detail.UnsubscribeSetting) == \
            (ours.title, ours.confirmed_opt_in, ours.unsubscribe_setting)
    cs_camps = cs_client.campaigns(page_size=10)
    ours = cm.campaigns(cid, page_size=10)
    assert (cs_camps.NumberOfPages, cs_camps.TotalNumberOfRecords) == (ours.number_of_pages,
                                                                       ours.total_number_of_records)
    assert [(c.CampaignID, c.Subject, c.SentDate, c.WebVersionURL) for c in cs_camps.Results] == \
        [(c.campaign_id, c.subject, c.raw["SentDate"], c.web_version_url) for c in ours.results]
    supp = cs_client.suppressionlist()
    assert sorted(s.EmailAddress for s in supp.Results) == sorted(s.email for s in cm.suppression_list(cid).results)
    active = createsend.List(createsend_auth, cs_lists[0].ListID).active(page_size=10)
    assert active.RecordsOnThisPage == 10 and active.Results[0].State == "Active"


def test_createsend_reads_every_demo_customer_like_our_client(sandbox, cm, createsend_auth):
    import createsend

    cid = sandbox.main_client_id
    cs_client = createsend.Client(createsend_auth, cid)
    for email in ALL_DEMO_ADDRESSES:
        cs_rows = cs_client.lists_for_email(email)
        ours = cm.lists_for_email(cid, email)
        assert [(r.ListID, r.ListName, r.SubscriberState, r.DateSubscriberAdded) for r in cs_rows] == \
            [(m.list_id, m.list_name, m.state, m.raw["DateSubscriberAdded"]) for m in ours], email
        for m in ours:
            cs_sub = createsend.Subscriber(createsend_auth, m.list_id, email)
            got = cs_sub.get(include_tracking_preference=True)
            mine = cm.subscriber(m.list_id, email)
            assert (got.EmailAddress, got.State, got.Date, got.ListJoinedDate, got.ConsentToTrack) == \
                (mine.email, mine.state, mine.raw["Date"], mine.raw["ListJoinedDate"], mine.consent_to_track)
            cs_hist = cs_sub.history()
            my_hist = cm.history(m.list_id, email)
            assert [(h.ID, h.Name, [(a.Event, a.Date, a.IPAddress, a.Detail) for a in h.Actions])
                    for h in cs_hist] == \
                [(h.id, h.name, [(a["Event"], a["Date"], a["IPAddress"], a["Detail"]) for a in h.raw["Actions"]])
                 for h in my_hist]
            assert [sum(a.Event == "Open" for a in h.Actions) for h in cs_hist] == [h.opens for h in my_hist]


def test_createsend_writes_change_state_and_errors_surface(sandbox, createsend_auth):
    import createsend

    news = _list_id(sandbox, "Newsletter")
    added = createsend.Subscriber(createsend_auth).add(news, "cs@example.com", "CS", [], False, "Yes")
    assert added == "cs@example.com"
    assert sandbox.data.state_of(news, "cs@example.com") == "Active"
    createsend.Subscriber(createsend_auth, news, "cs@example.com").unsubscribe()
    assert sandbox.data.state_of(news, "cs@example.com") == "Unsubscribed"
    createsend.Subscriber(createsend_auth, news, "cs@example.com").delete()
    assert sandbox.data.state_of(news, "cs@example.com") == "Deleted"
    with pytest.raises(createsend.BadRequest) as exc:
        createsend.Subscriber(createsend_auth, news, "nobody@example.com").get()
    assert exc.value.data.Code == 203
    with pytest.raises(createsend.Unauthorized) as exc:
        createsend.CreateSend({"api_key": "wrong"}).clients()
    assert exc.value.data.Code == 100
    with pytest.raises(createsend.Unauthorized) as exc:
        createsend.Client({"api_key": sandbox.client_api_key}, sandbox.other_client_id).lists()
    assert exc.value.data.Code == 102


def test_createsend_meets_the_faults_as_documented(sandbox, createsend_auth):
    """The peer's known weaknesses: 429 as a bare ClientError string, HTML 500 as a raw JSONDecodeError."""
    import createsend

    sandbox.set_faults(rate_limit=1)
    cs = createsend.CreateSend(createsend_auth)
    cs.clients()
    with pytest.raises(createsend.ClientError, match="429"):
        cs.clients()
    sandbox.reset_faults()
    sandbox.set_faults(error_rate=1.0)
    with pytest.raises(json.JSONDecodeError):
        cs.clients()
    sandbox.reset_faults()
    sandbox.set_faults(malformed_rate=1.0)
    with pytest.raises(json.JSONDecodeError):
        cs.clients()
