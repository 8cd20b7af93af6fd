"""``python -m cmlib lookup``: human and JSON output, exit statuses."""
from __future__ import annotations

import json
import re

import pytest
import responses

from cmlib.__main__ import main

BASE = "https://api.test/api/v3.3"
CID = "client1"


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("CM_API_KEY", "cli-secret-key-0000")
    monkeypatch.setenv("CM_CLIENT_ID", CID)
    monkeypatch.setenv("CM_API_URL", BASE)


MOSCOW = "(GMT+03:00) Moscow, St. Petersburg"


def mock_client(time_zone=MOSCOW, suppressed=()):
    responses.get(f"{BASE}/clients/{CID}.json", json={"BasicDetails": {
        "ClientID": CID, "CompanyName": "Acme", "Country": "Russia", "TimeZone": time_zone}})
    responses.get(f"{BASE}/clients/{CID}/suppressionlist.json", json={
        "Results": [{"EmailAddress": e, "SuppressionReason": r, "Date": d, "State": "Suppressed"}
                    for e, r, d in suppressed],
        "PageNumber": 1, "PageSize": 1000, "RecordsOnThisPage": len(suppressed),
        "TotalNumberOfRecords": len(suppressed), "NumberOfPages": 1})


def mock_account(time_zone=MOSCOW, suppressed=()):
    mock_client(time_zone, suppressed)
    responses.get(f"{BASE}/clients/{CID}/campaigns.json", json={
        "Results": [{"CampaignID": "c1", "Name": "Spring", "Subject": "Spring sale", "SentDate": "2026-03-01 10:00",
                     "WebVersionURL": "https://cm/t/c1"}],
        "PageNumber": 1, "PageSize": 1000, "RecordsOnThisPage": 1, "TotalNumberOfRecords": 1, "NumberOfPages": 1})
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json=[
        {"ListID": "L1", "ListName": "News", "SubscriberState": "Active", "DateSubscriberAdded": "2025-01-01 09:00"}])
    responses.get(f"{BASE}/lists/L1.json", json={"ListID": "L1", "Title": "News", "ConfirmedOptIn": False,
                                                  "UnsubscribeSetting": "OnlyThisList"})
    responses.get(f"{BASE}/subscribers/L1.json", json={
        "EmailAddress": "a+b@x.com", "Name": "", "Date": "2025-01-01 09:00:00", "ListJoinedDate": "2025-01-01 09:00:00",
        "State": "Active", "CustomFields": [], "ReadsEmailWith": "", "ConsentToTrack": "Unchanged"})
    responses.get(f"{BASE}/subscribers/L1/history.json", json=[
        {"ID": "c1", "Type": "Campaign", "Name": "Spring",
         "Actions": [{"Event": "Click", "Date": "2026-03-01 11:00", "IPAddress": "", "Detail": "https://x"}]}])


@responses.activate
def test_json_document_is_stable(env, capsys):
    mock_account()
    assert main(["lookup", "A+b@X.com", "--json", "--no-cache"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [d["email"] for d in doc] == ["A+b@x.com"]
    d = doc[0]
    assert list(d["lists"][0])[:5] == ["list_id", "list_name", "state", "state_changed", "joined"]
    assert list(d["campaigns"][0])[:6] == ["id", "name", "subject", "sent", "opened", "clicked"]
    assert set(d["activity"]) == {"received", "open_rate", "click_rate", "avg_opens", "avg_clicks"}
    assert d["campaigns"][0]["clicked"] is True and d["errors"] == []
    assert any("email=A%2Bb%40x.com" in c.request.url for c in responses.calls)


@responses.activate
def test_json_times_are_iso_with_the_clients_offset(env, capsys):
    """Campaign Monitor's zone-less dates are the client's (Moscow): machine-readable, offset included."""
    mock_account()
    assert main(["lookup", "a+b@x.com", "--json", "--no-cache"]) == 0
    [d] = json.loads(capsys.readouterr().out)
    assert d["lists"][0]["state_changed"] == "2025-01-01T09:00:00+03:00"
    assert d["lists"][0]["joined"] == "2025-01-01T09:00:00+03:00"
    assert d["campaigns"][0]["sent"] == "2026-03-01T10:00:00+03:00"
    assert d["fetched_at"].endswith("Z")
    assert d["lists"][0]["consent_to_track"] is None  # "Unchanged" is not a stored value
    assert d["suppressed"] is None


@responses.activate
def test_json_without_the_clients_zone_gives_no_made_up_offset(env, capsys):
    mock_account(time_zone="")
    assert main(["lookup", "a+b@x.com", "--json", "--no-cache"]) == 0
    [d] = json.loads(capsys.readouterr().out)
    assert d["lists"][0]["state_changed"] == "2025-01-01T09:00:00"
    assert d["campaigns"][0]["sent"] == "2026-03-01T10:00:00"


@responses.activate
def test_human_output(env, capsys):
    mock_account()
    assert main(["lookup", "a+b@x.com"]) == 0
    out = capsys.readouterr().out
    assert "News (Active)" in out and "Spring sale" in out and "open rate 0%" in out


@responses.activate
def test_human_output_names_the_clients_zone_and_hides_unchanged_consent(env, capsys):
    mock_account()
    assert main(["lookup", "a+b@x.com", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\(as of \d\d:\d\d:\d\d UTC\+03:00\)", out)
    assert "since 2025-01-01 09:00 UTC+03:00, joined 2025-01-01 09:00 UTC+03:00" in out
    assert "2026-03-01 10:00 UTC+03:00  Spring sale" in out
    assert "Unchanged" not in out and "consent" not in out
    assert "Suppressed" not in out


@responses.activate
def test_human_output_in_utc_when_the_clients_zone_cannot_be_read(env, capsys):
    mock_account()
    responses.replace(responses.GET, f"{BASE}/clients/{CID}.json", json={"Code": 400, "Message": "no"}, status=400)
    assert main(["lookup", "a+b@x.com", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "since 2025-01-01 09:00 UTC, joined" in out and re.search(r"as of \d\d:\d\d:\d\d UTC\)", out)


@responses.activate
def test_a_suppressed_address_says_so(env, capsys):
    mock_account(suppressed=[("A+B@x.com", "Spam Complaint", "2025-06-01 12:00:00")])
    assert main(["lookup", "a+b@x.com", "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert ("Suppressed: on this client's suppression list since 2025-06-01 12:00 UTC+03:00 "
            "(reason: Spam Complaint)") in out
    assert main(["lookup", "a+b@x.com", "--json", "--no-cache"]) == 0
    [d] = json.loads(capsys.readouterr().out)
    assert d["suppressed"] == {"reason": "Spam Complaint", "since": "2025-06-01T12:00:00+03:00"}


@responses.activate
def test_auth_failure_exits_nonzero_without_key(env, capsys):
    mock_client()
    responses.get(f"{BASE}/clients/{CID}/campaigns.json", json={"Code": 100, "Message": "Invalid API key"}, status=401)
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json={"Code": 100, "Message": "Invalid API key"},
                  status=401)
    assert main(["lookup", "a@x.com"]) == 1
    err = capsys.readouterr().err
    assert "authentication failed" in err and "Code 100" in err
    assert "cli-secret-key-0000" not in err


def test_bad_arguments(env, capsys):
    assert main(["lookup", "not-an-email"]) == 2
    assert "invalid address" in capsys.readouterr().err
    assert main(["lookup"]) == 2
    assert main(["nonsense"]) == 2


@responses.activate
def test_invalid_addresses_are_reported_in_json(env, capsys):
    mock_account()
    assert main(["lookup", "a+b@x.com", "broken@", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc[1]["email"] == "broken@" and "invalid address" in doc[1]["errors"][0]["message"]


def test_an_empty_argument_says_why_it_exits_2(env, capsys):
    """`lookup ""` passes argparse (one argument) but holds no address: say so, not silence."""
    assert main(["lookup", ""]) == 2
    err = capsys.readouterr().err
    assert "no email address given" in err
    assert main(["lookup", " , ", "\u2060"]) == 2
    assert "no email address given" in capsys.readouterr().err


@responses.activate
def test_internationalised_domain_is_sent_in_ascii(env, capsys):
    mock_account()
    assert main(["lookup", "a+b@bücher.de", "--json", "--no-cache"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc[0]["email"] == "a+b@xn--bcher-kva.de"
    urls = [c.request.url for c in responses.calls if "email=" in c.request.url]
    assert urls and all("email=a%2Bb%40xn--bcher-kva.de" in u for u in urls)


def test_non_ascii_local_part_is_refused_before_any_request(env, capsys):
    with responses.RequestsMock() as rsps:  # any request would fail the test
        assert main(["lookup", "андрей@пример.рф"]) == 2
        assert len(rsps.calls) == 0
    err = capsys.readouterr().err
    assert "андрей@пример.рф" in err and "non-ASCII" in err


@responses.activate
def test_markup_and_quoted_tokens_are_reported_with_their_reason(env, capsys):
    mock_account()
    assert main(["lookup", "a+b@x.com", "<script>alert(1)</script>", "\"o'brien\"@example.com", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    problems = {d["email"]: d["errors"][0]["message"] for d in doc[1:]}
    assert "HTML" in problems["<script>alert(1)</script>"]
    assert "quotes" in problems["\"o'brien\"@example.com"]
