from datetime import UTC, datetime, timedelta

import pytest

from cmlib.timezones import (
    UTC_ZONE,
    ZoneSource,
    choose_zone,
    format_time,
    localise,
    parse_cm_time_zone,
)


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("(GMT+03:00) Moscow, St. Petersburg", timedelta(hours=3)),
        ("(GMT-05:00) Eastern Time (US & Canada)", timedelta(hours=-5)),
        ("(GMT+05:30) Chennai, Kolkata", timedelta(hours=5, minutes=30)),
        ("(GMT) Dublin, Edinburgh, Lisbon, London", timedelta(0)),
    ],
)
def test_campaign_monitor_zone_names_give_their_offset(text, offset):
    tz = parse_cm_time_zone(text)
    assert tz is not None
    assert tz.utcoffset(None) == offset


@pytest.mark.parametrize("text", [None, "", "Moscow", "(GMT+99:00) Nowhere"])
def test_unknown_zone_names_are_none(text):
    assert parse_cm_time_zone(text) is None


def test_the_browser_wins_then_the_client_then_utc():
    assert choose_zone("Europe/Berlin", "(GMT+03:00) Moscow").source is ZoneSource.BROWSER
    assert choose_zone("Not/AZone", "(GMT+03:00) Moscow").source is ZoneSource.CLIENT
    assert choose_zone(None, None) is UTC_ZONE


def test_a_campaign_monitor_time_is_converted_from_the_client_zone_and_named():
    moscow = parse_cm_time_zone("(GMT+03:00) Moscow")
    zone = choose_zone("Europe/Berlin")
    # 16:00 in Moscow (UTC+3) is 14:00 in Berlin in winter (CET, UTC+1).
    assert format_time(datetime(2026, 11, 25, 16, 0), zone, cm_zone=moscow) == "2026-11-25 14:00 CET"
    assert format_time(datetime(2026, 7, 1, 16, 0), zone, cm_zone=moscow) == "2026-07-01 15:00 CEST"


def test_client_zone_without_a_name_shows_its_offset():
    zone = choose_zone(None, "(GMT+03:00) Moscow")
    at = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
    assert format_time(at, zone) == "2026-11-25 16:00 UTC+03:00"


def test_our_own_utc_times_and_missing_values():
    assert format_time(datetime(2026, 11, 25, 13, 0, tzinfo=UTC), UTC_ZONE) == "2026-11-25 13:00 UTC"
    assert format_time(None, UTC_ZONE) == ""
    assert localise(datetime(2026, 1, 1), UTC_ZONE) == datetime(2026, 1, 1, tzinfo=UTC)
