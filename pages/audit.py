"""Audit log: every subscription change attempted through the dashboard, filterable and exportable.

Thin: the query and the CSV (UTF-8 with BOM, formula-neutralised cells) are ``cmlib.audit``'s,
the table and its detail view ``ui.audit_view``'s; this page gathers the filters. Rows are stored
in UTC and shown, like every time on the dashboard, in the one display zone (named). Values are
data: they go into a dataframe and a CSV, never into markdown unescaped.

Language: the page speaks the session's language (the table's words through ``ui.audit_view``);
the CSV is the log as stored -- English column names, outcomes and actions, UTC ISO times, the
API's state names -- because it is data for scripts and for comparing exports across operators.
"""
from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from cmlib.audit import (
    ACTOR_SOURCE_WORDS,
    OUTCOME_WORDS,
    RESULTS,
    ActorSource,
    AuditFilter,
    AuditLog,
    Outcome,
    to_csv_bytes,
)
from cmlib.errors import describe
from cmlib.i18n import N_, Language, current_language, nt, t
from cmlib.runtime import Connection
from ui.audit_view import filter_days, query_days, render_rows, zone_name
from ui.connection import get_connection
from ui.display_zone import display_zone
from ui.language import apply_language
from ui.shell import ensure_shell
from ui.text import md_escape

ensure_shell(__file__)  # before anything is drawn (the imports above draw nothing)
apply_language()  # the session's language, also when this page runs on its own

ANY = "any"
DAY_FORMATS = {Language.EN: "YYYY/MM/DD", Language.RU: "DD.MM.YYYY"}  # how the day pickers write a day


def _connection() -> Connection | None:
    """Only for the client's time zone, when the browser names none: never a reason to fail."""
    try:
        return get_connection()
    except Exception:  # the sidebar already says why there is no connection
        return None


choice = display_zone(_connection())
zone = zone_name(choice.zone)

st.title(t("Audit log"))
st.caption(t("Every subscription change attempted from the dashboard: who, when, which address and list, the "
             "state before, what was asked, why, and what happened.") + " " + md_escape(choice.explain()))


def _word(outcome: Outcome) -> str:
    return t(OUTCOME_WORDS[outcome])


def _source(source: ActorSource) -> str:
    return t(ACTOR_SOURCE_WORDS[source])


with st.expander(t("What the results mean")):
    st.markdown("\n".join("- " + t(text, word=_word(outcome)) for outcome, text in (
        (Outcome.DONE, N_("**{word}**: Campaign Monitor shows the change (when its answer was lost, the read-back "
                          "confirmed it).")),
        (Outcome.ALREADY, N_("**{word}**: nothing was sent, the address was already so (e.g. another session made "
                             "the same change).")),
        (Outcome.QUEUED, N_("**{word}**: accepted, not visible yet (adds go through Campaign Monitor's queue).")),
        (Outcome.FAILED, N_("**{word}**: not done: refused by Campaign Monitor, or its answer was lost and the "
                            "read-back shows no change.")),
        (Outcome.UNKNOWN, N_("**{word}**: the answer was lost and the read-back could not tell; the row says what "
                             "to check.")),
        (Outcome.NOT_SENT, N_("**{word}**: never reached Campaign Monitor (it could not be reached, or another "
                              "change of the address was in progress).")),
        (Outcome.SENT, N_("**{word}**: accepted, but the read-back failed.")),
        (Outcome.CONFLICT, N_("**{word}**: not written, the states had changed since the dialog opened.")),
    )) + "\n\n" + t("**{name_from}** says where the name in **{who}** came from: *{signed_in}* (the login "
                     "vouches for it), *{typed}* (written into the dashboard by the operator), *{link}* (the "
                     "operator= part of a helpdesk link, which anyone editing the link can change), *{not_recorded}* "
                     "(older rows).", name_from=t("Name from"), who=t("Who"),
                     signed_in=_source(ActorSource.SIGNED_IN), typed=_source(ActorSource.TYPED),
                     link=_source(ActorSource.HELPDESK_LINK), not_recorded=_source(ActorSource.NOT_RECORDED)))


def _result_option(value: str, lang: Language) -> str:
    """A filter choice as people read it (the stored value is what is filtered on)."""
    return t("any", lang=lang) if value == ANY else t(OUTCOME_WORDS[Outcome(value)], lang=lang)


log = AuditLog()
with st.container(border=True):
    c1, c2, c3 = st.columns(3)
    email = c1.text_input(t("Address contains"), key="audit_email")
    list_text = c2.text_input(t("List name or ID contains"), key="audit_list")
    actor = c3.text_input(t("Who contains"), key="audit_actor")
    c4, c5, c6 = st.columns(3)
    lang = current_language()  # bound: the options are drawn in this run's language, wherever they are formatted
    result = c4.selectbox(t("Result"), (ANY, *RESULTS), key="audit_result",
                          format_func=lambda value: _result_option(value, lang))
    day_format = DAY_FORMATS[current_language()]
    since = c5.date_input(t("From (a day in {zone})", zone=zone), value=None, key="audit_since", format=day_format)
    until = c6.date_input(t("To (a day in {zone})", zone=zone), value=None, key="audit_until", format=day_format)

if since and until and since > until:
    st.warning(t("“From” is after “To”: no row can match."))

q_since, q_until = query_days(since, until)
flt = AuditFilter(email_contains=email or "", list_text=list_text or "", actor=actor or "",
                  result="" if result == ANY else result, since=q_since, until=q_until)
try:
    matched = log.query(flt)
    entries = filter_days(matched, since, until, choice.zone)
    total = log.count()
except Exception as exc:  # a broken or unreadable database must not crash the app
    st.error(md_escape(t("The audit log at {path} cannot be read: {reason}", path=log.location,
                         reason=describe(exc))))
    st.stop()

if not entries:
    st.info(t("No change matches these filters.") if total else t("No change has been made through the "
                                                                   "dashboard yet."))
else:
    rows = nt("{n} row, newest first", "{n} rows, newest first", len(entries))
    if len(matched) >= flt.limit:
        rows = t("{rows} (the first {limit}; narrow the filters to see older rows)", rows=rows, limit=flt.limit)
    st.caption(rows)
    render_rows(entries, choice)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    st.download_button(t("Download CSV"), data=to_csv_bytes(entries), file_name=f"audit-{stamp}-utc.csv",
                       mime="text/csv", icon=":material/download:", key="audit_download", on_click="ignore")
    st.caption(t("The CSV keeps the stored values: times in UTC (ISO 8601), the API's state names and the English "
                 "words the log stores, for scripts and spreadsheets."))
