from datetime import datetime

from cmlib.models import (
    Campaign,
    ClientDetails,
    ClientRef,
    HistoryItem,
    ListDetail,
    ListMembership,
    ListRef,
    Page,
    SubscriberDetail,
    SuppressedAddress,
    parse_date,
    parse_list,
)
from tests.fixtures import fixture


def test_dates_with_and_without_seconds():
    assert parse_date("2010-10-25 10:28:00") == datetime(2010, 10, 25, 10, 28, 0)
    assert parse_date("2012-08-20 22:32") == datetime(2012, 8, 20, 22, 32)
    assert parse_date("2010-03-09") == datetime(2010, 3, 9)
    assert parse_date("") is None
    assert parse_date(None) is None
    assert parse_date("not a date") is None


def test_listsforemail_uses_listname():
    rows = parse_list(fixture("listsforemail.json"), ListMembership.from_api)
    assert [r.list_name for r in rows] == ["List Number One", "List Number Two"]
    assert [r.state for r in rows] == ["Active", "Unsubscribed"]
    assert rows[0].date_added == datetime(2012, 8, 20, 22, 32)


def test_unknown_state_and_extra_fields_survive():
    m = ListMembership.from_api({"ListID": "x", "ListName": "L", "SubscriberState": "Spam",
                                 "DateSubscriberAdded": "2020-01-01 00:00", "NewField": 1})
    assert m.state == "Spam"
    assert m.raw["NewField"] == 1


def test_subscriber_detail_with_tracking_preference():
    s = SubscriberDetail.from_api(fixture("subscriber_details_with_tracking_preference.json"))
    assert s.email == "subscriber@example.com"
    assert s.consent_to_track == "Yes"
    assert s.state_changed == datetime(2010, 10, 25, 10, 28)
    assert s.joined == datetime(2010, 10, 25, 10, 28)
    assert [f.key for f in s.custom_fields] == ["website", "age", "subscription date"]
    assert all(isinstance(f.value, str) for f in s.custom_fields)


def test_multi_select_custom_field_repeats_key():
    page = fixture("active_subscribers.json")
    s = SubscriberDetail.from_api(page["Results"][0])
    assert [f.value for f in s.custom_fields if f.key == "multi select field"] == ["option one", "option two"]
    assert s.consent_to_track is None  # absent without includetrackingpreference


def test_history_counts_opens_and_clicks():
    items = parse_list(fixture("subscriber_history.json"), HistoryItem.from_api)
    assert len(items) == 1
    assert items[0].type == "Campaign"
    assert items[0].opens == 3 and items[0].clicks == 3
    assert items[0].actions[1].detail == "https://example.com/post/12323/"


def test_history_item_without_actions():
    it = HistoryItem.from_api({"ID": "c1", "Type": "Campaign", "Name": "N", "Actions": []})
    assert it.actions == () and it.opens == 0


def test_campaign_page():
    page = Page.from_api(fixture("campaigns.json"), Campaign.from_api)
    assert page.number_of_pages == 25 and page.has_more
    c = page.results[0]
    assert c.campaign_id == "fc0ce7105baeaf97f47c99be31d02a91"
    assert c.sent_date == datetime(2010, 10, 12, 12, 58)
    assert c.tags == ("Tag1", "Tag2")
    assert page.results[1].tags == ()


def test_empty_page_has_zero_pages():
    page = Page.from_api({"Results": [], "PageNumber": 1, "PageSize": 1000, "RecordsOnThisPage": 0,
                          "TotalNumberOfRecords": 0, "NumberOfPages": 0}, Campaign.from_api)
    assert page.results == () and not page.has_more


def test_client_details_drop_echoed_api_key():
    d = ClientDetails.from_api(fixture("client_details.json"))
    assert d.company_name == "Client One" and d.country == "Australia"
    assert "ApiKey" not in d.raw


def test_lists_clients_list_details_suppression():
    assert [c.name for c in parse_list(fixture("clients.json"), ClientRef.from_api)] == ["Client One", "Client Two"]
    assert [x.name for x in parse_list(fixture("lists.json"), ListRef.from_api)] == ["List One", "List Two"]
    ld = ListDetail.from_api(fixture("list_details.json"))
    assert ld.unsubscribes_from_all and not ld.confirmed_opt_in
    sup = Page.from_api(fixture("suppressionlist.json"), SuppressedAddress.from_api)
    assert sup.results[0].email == "example+1@example.com" and sup.results[0].reason == "Unsubscribed"
