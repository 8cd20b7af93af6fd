"""Audit log: every subscription change attempted through the dashboard, filterable and exportable.

Thin: the query and the CSV (UTF-8 with BOM, formula-neutralised cells) are ``cmlib.audit``'s;
this page only gathers the filters and shows the rows. Values are data: they go into a
dataframe and a CSV, never into markdown.
"""
from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from cmlib.audit import RESULTS, AuditFilter, AuditLog, table_rows, to_csv_bytes
from cmlib.errors import describe
from ui.shell import ensure_shell
from ui.text import md_escape

ensure_shell(__file__)  # before anything is drawn (the imports above draw nothing)

ANY = "any"

st.title("Audit log")
st.caption("Every subscription change attempted from the dashboard: who, when, which address and list, the "
           "state before, what was asked, why, and what happened. Times are UTC.")
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
        "- **conflict**: not written, the states had changed since the dialog opened.")

log = AuditLog()
with st.container(border=True):
    c1, c2, c3 = st.columns(3)
    email = c1.text_input("Address contains", key="audit_email")
    list_text = c2.text_input("List name or ID contains", key="audit_list")
    actor = c3.text_input("Who contains", key="audit_actor")
    c4, c5, c6 = st.columns(3)
    result = c4.selectbox("Result", (ANY, *RESULTS), key="audit_result")
    since = c5.date_input("From (UTC)", value=None, key="audit_since")
    until = c6.date_input("To (UTC)", value=None, key="audit_until")

if since and until and since > until:
    st.warning("“From” is after “To”: no row can match.")

flt = AuditFilter(email_contains=email or "", list_text=list_text or "", actor=actor or "",
                  result="" if result == ANY else result, since=since, until=until)
try:
    entries = log.query(flt)
except Exception as exc:  # a broken or unreadable database must not crash the app
    st.error(md_escape(f"The audit log at {log.path} cannot be read: {describe(exc)}"))
    st.stop()

if not entries:
    st.info("No change matches these filters." if log.count() else "No change has been made through the "
            "dashboard yet.")
else:
    st.caption(f"{len(entries)} row{'s' if len(entries) != 1 else ''}, newest first"
               + (" (the first 10,000; narrow the filters to see older rows)" if len(entries) >= flt.limit else ""))
    st.dataframe(pd.DataFrame(table_rows(entries)), hide_index=True, key="audit_table")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
    st.download_button("Download CSV", data=to_csv_bytes(entries), file_name=f"audit-{stamp}.csv",
                       mime="text/csv", icon=":material/download:", key="audit_download", on_click="ignore")
