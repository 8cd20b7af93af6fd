"""Audit log: every subscription change attempted through the dashboard, filterable and exportable.

Thin: the query and the CSV (UTF-8 with BOM, formula-neutralised cells) are ``cmlib.audit``'s,
the table and its detail view ``ui.audit_view``'s; this page gathers the filters. Rows are stored
in UTC and shown, like every time on the dashboard, in the one display zone (named). Values are
data: they go into a dataframe and a CSV, never into markdown unescaped.
"""
from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from cmlib.audit import RESULTS, AuditFilter, AuditLog, to_csv_bytes
from cmlib.errors import describe
from cmlib.runtime import Connection
from ui.audit_view import filter_days, query_days, render_rows, zone_name
from ui.connection import get_connection
from ui.display_zone import display_zone
from ui.shell import ensure_shell
from ui.text import md_escape

ensure_shell(__file__)  # before anything is drawn (the imports above draw nothing)

ANY = "any"


def _connection() -> Connection | None:
    """Only for the client's time zone, when the browser names none: never a reason to fail."""
    try:
        return get_connection()
    except Exception:  # the sidebar already says why there is no connection
        return None


choice = display_zone(_connection())
zone = zone_name(choice.zone)

st.title("Audit log")
st.caption("Every subscription change attempted from the dashboard: who, when, which address and list, the "
           "state before, what was asked, why, and what happened. " + md_escape(choice.explain()))
with st.expander("What the results mean"):
    st.markdown(
        "- **done**: Campaign Monitor shows the change (when its answer was lost, the read-back confirmed it).\n"
        "- **already**: nothing was sent, the address was already so (e.g. another session made the same change).\n"
        "- **queued**: accepted, not visible yet (adds go through Campaign Monitor's queue).\n"
        "- **failed**: not done: refused by Campaign Monitor, or its answer was lost and the read-back shows no "
        "change.\n"
        "- **unknown**: the answer was lost and the read-back could not tell; the row says what to check.\n"
        "- **not sent**: never reached Campaign Monitor (it could not be reached, or another change of the "
        "address was in progress).\n"
        "- **sent**: accepted, but the read-back failed.\n"
        "- **conflict**: not written, the states had changed since the dialog opened.\n\n"
        "**Name from** says where the name in **Who** came from: *signed-in user* (the login vouches for "
        "it), *typed* (written into the dashboard by the operator), *not recorded* (older rows).")

log = AuditLog()
with st.container(border=True):
    c1, c2, c3 = st.columns(3)
    email = c1.text_input("Address contains", key="audit_email")
    list_text = c2.text_input("List name or ID contains", key="audit_list")
    actor = c3.text_input("Who contains", key="audit_actor")
    c4, c5, c6 = st.columns(3)
    result = c4.selectbox("Result", (ANY, *RESULTS), key="audit_result")
    since = c5.date_input(f"From (a day in {zone})", value=None, key="audit_since")
    until = c6.date_input(f"To (a day in {zone})", value=None, key="audit_until")

if since and until and since > until:
    st.warning("“From” is after “To”: no row can match.")

q_since, q_until = query_days(since, until)
flt = AuditFilter(email_contains=email or "", list_text=list_text or "", actor=actor or "",
                  result="" if result == ANY else result, since=q_since, until=q_until)
try:
    matched = log.query(flt)
    entries = filter_days(matched, since, until, choice.zone)
    total = log.count()
except Exception as exc:  # a broken or unreadable database must not crash the app
    st.error(md_escape(f"The audit log at {log.path} cannot be read: {describe(exc)}"))
    st.stop()

if not entries:
    st.info("No change matches these filters." if total else "No change has been made through the "
            "dashboard yet.")
else:
    st.caption(f"{len(entries)} row{'s' if len(entries) != 1 else ''}, newest first"
               + (" (the first 10,000; narrow the filters to see older rows)" if len(matched) >= flt.limit else ""))
    render_rows(entries, choice)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    st.download_button("Download CSV", data=to_csv_bytes(entries), file_name=f"audit-{stamp}-utc.csv",
                       mime="text/csv", icon=":material/download:", key="audit_download", on_click="ignore")
    st.caption("The CSV keeps the stored values: times in UTC (ISO 8601) and the API's state names, for "
               "scripts and spreadsheets.")
