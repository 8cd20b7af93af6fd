"""The Lookup page's campaigns table and activity figures (ui.campaigns_html): what the API sends
is text, a web version is a link only when it is http(s), and every attribute value stays inside
its quotes."""
from __future__ import annotations

from datetime import UTC, datetime

from cmlib.i18n import Language, use_language
from cmlib.lookup import Activity, Profile
from cmlib.presenters import Figure, TimeDisplay, activity_figures
from cmlib.profiles import ReceivedCampaign
from ui.campaigns_html import campaigns_table_html, figures_html


def profile(*campaigns: ReceivedCampaign) -> Profile:
    return Profile("a@example.com", (), campaigns, Activity.of(campaigns), datetime(2026, 1, 3, tzinfo=UTC))


def camp(subject: str, url: str, day: int = 2, opens: int = 1) -> ReceivedCampaign:
    return ReceivedCampaign(f"c{day}", "name", subject, datetime(2026, 1, day, 3, 4, tzinfo=UTC), url, opens, 0)


def test_api_text_is_text_and_only_http_links_are_links():
    body = campaigns_table_html(
        profile(camp('<img src=x onerror="alert(1)">', "javascript:alert(1)", 2),
                camp("Hi & bye", "https://example.com/w?a=1&b=2", 1, 0)),
        TimeDisplay(), label='The last "2"', zone_note='Times in "UTC" <b>')
    assert "<img" not in body and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in body
    assert "javascript:" not in body and body.count("<a ") == 1
    assert 'href="https://example.com/w?a=1&amp;b=2"' in body and 'rel="noopener noreferrer"' in body
    assert 'aria-label="The last &quot;2&quot;"' in body
    assert 'title="Times in &quot;UTC&quot; &lt;b&gt;"' in body
    assert body.count('role="rowheader"') == 2 and body.count('role="columnheader"') == 5
    assert 'aria-label="yes"' in body and 'aria-label="no"' in body


def test_the_newest_three_in_the_readers_language():
    campaigns = [camp(f"S{d}", "", d) for d in (4, 3, 2, 1)]  # a profile holds them newest first
    with use_language(Language.RU):
        body = campaigns_table_html(profile(*campaigns), TimeDisplay(), label="x")
    assert [s for s in ("S4", "S3", "S2", "S1") if s in body] == ["S4", "S3", "S2"]
    assert body.index("S4") < body.index("S3") < body.index("S2")
    assert 'data-label="Отправлено"' in body and ">Тема</th>" in body
    assert 'aria-label="да"' in body


def test_figures_are_a_labelled_description_list_of_escaped_text():
    body = figures_html([Figure("<b>Open</b> rate", "58%", 'Said "<i>"'), Figure("Clicks", "1 & 2", "")],
                        label='Activity "x"')
    assert body.startswith('<dl class="cm-figures" aria-label="Activity &quot;x&quot;">')
    assert "<b>" not in body and "<i>" not in body
    assert "<dt>&lt;b&gt;Open&lt;/b&gt; rate</dt>" in body and "1 &amp; 2" in body
    assert body.count("<dt>") == 2 and body.count('class="cm-figure-value"') == 2


def test_figures_in_russian_keep_the_number_format():
    campaigns = [camp("S2", "", 2, 1), camp("S1", "", 1, 0)]
    with use_language(Language.RU):
        body = figures_html(activity_figures(profile(*campaigns).activity), label="Активность")
    assert "Доля открытий" in body and "50\u00a0%" in body
