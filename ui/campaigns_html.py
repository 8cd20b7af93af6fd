"""The last campaigns and the activity figures as plain HTML: the Lookup page's table and
figures, and the panel's list share this.

Three rows do not need a data grid. Streamlit's grid is a canvas: a screen reader cannot read
it, its text cannot be selected into a ticket, and the browser has to load and compile about
1.5 MB of JavaScript for it (the grid and its Arrow decoder) before a tab can show it, which is
most of the wait on a first deep link and part of every rerun's (issue 15). A ``<table>`` with
row and column headers reads row by row, copies as text and costs nothing to draw.

The five activity figures are one description list for the same reasons: as ``st.metric``
elements they were fifteen elements and fifteen columns per three-address lookup, each drawn by
React on its own, plus the metric's frontend code and its number-formatting libraries -- about a
fifth of the browser's work on a first deep link (issue 15). Each figure's explanation is shown
under it rather than in a hover tooltip, so it is there on a touch screen and for a screen reader.

Every string from the API (subjects, names, links) and every word of ours is HTML-escaped; a
web version is a link only when :func:`cmlib.presenters.safe_web_link` allows it (http(s)), and
it opens in a new tab without handing it ``window.opener``.
"""
from __future__ import annotations

import html

from cmlib.i18n import t
from cmlib.lookup import Profile
from cmlib.presenters import (
    CAMPAIGN_COLUMNS,
    COL_CLICKED,
    COL_OPENED,
    COL_SENT,
    COL_SUBJECT,
    COL_WEB,
    Figure,
    TimeDisplay,
    campaign_rows,
    column_title,
)

# The yes/no marks (both pages) and the table (Lookup page); st.html puts a style-only block in
# the page's hidden event container, so drawing it takes no room.
FLAG_CSS = """.cm-flag {font-weight: 700;}
.cm-yes {color: #15803d;} .cm-no {color: #94a3b8;}"""
TABLE_CSS = "<style>\n" + FLAG_CSS + """
.cm-table-wrap {overflow-x: auto; max-width: 100%;}
.cm-campaigns-table {border-collapse: collapse; width: 100%; font-size: 0.95rem;}
.cm-campaigns-table th, .cm-campaigns-table td {text-align: left; vertical-align: top;
  padding: 0.4rem 0.6rem; border-bottom: 1px solid #e2e8f0;}
.cm-campaigns-table thead th {font-weight: 600; color: #475569; border-bottom: 2px solid #cbd5e1;
  white-space: nowrap;}
.cm-campaigns-table tbody th {font-weight: 600; overflow-wrap: anywhere; min-width: 12rem;}
.cm-campaigns-table td.cm-sent {white-space: nowrap;}
@media (max-width: 640px) {
  /* A phone-sized window: each email as a small card, every value named, none scrolled away. */
  .cm-campaigns-table thead {position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);}
  .cm-campaigns-table tr {display: block; padding: 0.4rem 0; border-bottom: 1px solid #e2e8f0;}
  .cm-campaigns-table th, .cm-campaigns-table td {display: block; border: none; padding: 0.1rem 0; min-width: 0;}
  .cm-campaigns-table td.cm-sent {white-space: normal;}
  .cm-campaigns-table td::before {content: attr(data-label) ": "; color: #475569;}
  .cm-campaigns-table td:empty {display: none;}
}
dl.cm-figures {display: grid; grid-template-columns: repeat(auto-fit, minmax(9.5rem, 1fr)); gap: 0.75rem;
  margin: 0; padding: 0;}
.cm-figure {border: 1px solid #e2e8f0; border-radius: 0.5rem; padding: 0.6rem 0.8rem;}
.cm-figure dt {font-size: 0.875rem; color: #475569;}
.cm-figure dd {margin: 0;}
.cm-figure .cm-figure-value {font-size: 1.75rem; line-height: 1.3;}
.cm-figure .cm-figure-help {font-size: 0.8rem; color: #64748b;}
</style>"""
TABLE_CLASS = "cm-campaigns-table"
# Explicit roles: on a narrow screen the rows are drawn as blocks, and a browser drops a table's
# implicit roles for cells that are not displayed as table cells.


def flag_html(done: bool, what: str = "") -> str:
    """A ✓ or ✗ with its text alternative ("yes"/"no") for a screen reader, after ``what`` when
    given (``what`` is already translated and HTML-escaped)."""
    if done:
        icon = f'<span class="cm-flag cm-yes" role="img" aria-label="{html.escape(t("yes"), quote=True)}">✓</span>'
    else:
        icon = f'<span class="cm-flag cm-no" role="img" aria-label="{html.escape(t("no"), quote=True)}">✗</span>'
    return f"{what} {icon}" if what else icon


def web_link_html(url: str, subject: str, text: str) -> str:
    """A link to a campaign's web version (``url`` already checked by ``safe_web_link``): the eye
    sees ``text``, a screen reader hears which campaign's web version it is."""
    name = html.escape(t("web version of {subject}", subject=subject), quote=True)
    return (f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer" '
            f'aria-label="{name}">{html.escape(text)}</a>')


def campaigns_table_html(profile: Profile, times: TimeDisplay, label: str, zone_note: str = "",
                         shown: int = 3) -> str:
    """The last ``shown`` campaigns of ``profile`` as a table named ``label`` (the caption the
    page shows above it), Sent in the page's display zone with ``zone_note`` as its header's
    tooltip."""
    titles = {c: html.escape(column_title(c)) for c in CAMPAIGN_COLUMNS}
    labels = {c: html.escape(column_title(c), quote=True) for c in CAMPAIGN_COLUMNS}
    sent_title = f' title="{html.escape(zone_note, quote=True)}"' if zone_note else ""
    head = "".join(f'<th scope="col" role="columnheader"{sent_title if c == COL_SENT else ""}>{titles[c]}</th>'
                   for c in CAMPAIGN_COLUMNS)
    rows = []
    for row in campaign_rows(profile, shown, times):
        subject = row[COL_SUBJECT] or t("(no subject)")
        url = row[COL_WEB]
        web = web_link_html(url, subject, t("view")) if url else ""

        def cell(column: str, content: str, css: str = "") -> str:
            klass = f' class="{css}"' if css else ""
            return f'<td role="cell" data-label="{labels[column]}"{klass}>{content}</td>'

        rows.append(f'<tr role="row"><th scope="row" role="rowheader">{html.escape(subject)}</th>'
                    + cell(COL_SENT, html.escape(row[COL_SENT] or t("date unknown")), "cm-sent")
                    + cell(COL_OPENED, flag_html(bool(row[COL_OPENED])))
                    + cell(COL_CLICKED, flag_html(bool(row[COL_CLICKED])))
                    + cell(COL_WEB, web) + "</tr>")
    return (f'<div class="cm-table-wrap"><table class="{TABLE_CLASS}" role="table" '
            f'aria-label="{html.escape(label, quote=True)}"><thead><tr role="row">{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


FIGURES_CLASS = "cm-figures"


def figures_html(figures: list[Figure], label: str) -> str:
    """The activity figures as a description list named ``label`` (the section's heading): each
    label, its value, and the sentence explaining it. All text is HTML-escaped."""
    items = "".join(
        f'<div class="cm-figure"><dt>{html.escape(f.label)}</dt>'
        f'<dd class="cm-figure-value">{html.escape(f.value)}</dd>'
        f'<dd class="cm-figure-help">{html.escape(f.help)}</dd></div>'
        for f in figures)
    return f'<dl class="{FIGURES_CLASS}" aria-label="{html.escape(label, quote=True)}">{items}</dl>'
