"""The subscription editor: a per-address dialog that shows a plan before it writes anything.

The dialog is opened by a session_state flag (``ui.state.SUBSCRIPTION_DIALOG`` = the address),
not by the button's return value, so it survives reruns (the admin prompt's rerun, a double
click) and a test can open it by setting the flag. Everything the dialog knows lives in one
:class:`EditorState` per address in session_state:

* the snapshot of the states read fresh when the dialog opened (the baseline of every change);
* a generation number that is part of every checkbox key: "Reset" bumps it, so the checkboxes
  are recreated from the snapshot (form checkboxes cannot be changed from inside their form);
* the pending plan after "Save changes" (saving again replaces it); Apply is enabled only when
  every warning is ticked and a required reason is given;
* the last apply report.

Apply runs once per plan token: the token goes into a session-wide set before the first write,
so a double click or a rerun can never send the same plan twice. Across sessions,
``cmlib.subscriptions.apply_plan`` serialises writes per address (``cmlib.write_locks``).
Opening reads on the connection's own pool (``Connection.executor``): no threads of its own.

Who is acting is part of every write: the signed-in user, else the name typed in this browser
(``ui.identity``); with neither, the review asks for a name before Apply is enabled (reads never
ask) and says "Acting as …" once there is one.

When the re-check right before writing finds that the subscriptions changed meanwhile, nothing is
written and the operator's choices are carried over to the new states
(``cmlib.subscriptions.rebase_choices``): the form shows them on the new states, the dialog says
what changed, and a new plan waits for them to confirm again (the reason and consent they gave
are kept; warnings must be ticked again).

The report tells the truth about each change, including "unknown" (the answer was lost and the
read-back could not tell) and "not sent" (Campaign Monitor could not be reached). When nothing
reached Campaign Monitor the dialog stays as it was -- the ticks are kept, the tab underneath is
not refetched (with the API silent a refetch would replace the tab, and this dialog, by "lookup
failed") -- so Save changes and Apply again is all it takes once the API answers. A refetch is
asked for through ``ui.state.request_refresh``, the one channel to the view showing the address.

Language: the dialog speaks the session's language (``cmlib.i18n.t``), its title included (so it
is built per run, not by a decorator at import). The plan's and the report's sentences come from
``cmlib.subscriptions`` as lazy texts, said here with ``text_of``: the audit rows made from the
same verdicts stay English. Values from Campaign Monitor (list names, its error messages) and what
the operator typed are shown as they are; consent options are drawn translated, sent as the API's.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import streamlit as st

from cmlib.audit_entry import ActorSource, Outcome
from cmlib.audit_secrets import configured_secrets
from cmlib.errors import CMError, describe
from cmlib.i18n import N_, Language, current_language, nt, t
from cmlib.lazy_text import text_of
from cmlib.lookup import CASE_NO_LISTS, Profile
from cmlib.runtime import Connection
from cmlib.subscriptions import (
    CONSENT_UNCHANGED,
    NOT_ON_LIST,
    ApplyOptions,
    ApplyReport,
    ListInfo,
    Plan,
    PlanNotReady,
    Rebased,
    Snapshot,
    SnapshotSource,
    apply_plan,
    plan_changes,
    read_for_editing,
    rebase_choices,
    seed_max_age,
    snapshot_from_lookup,
    unsubscribe_all_desired,
)
from cmlib.timezones import format_time
from ui.a11y import announce_heading
from ui.access import require_admin
from ui.badges import render_state_badge
from ui.connection import get_connection
from ui.display_zone import display_zone
from ui.identity import MAX_NAME, Actor, acting, remember_in_browser, set_typed_name
from ui.state import APPLIED_PLANS, SUBSCRIPTION_DIALOG, request_refresh
from ui.text import md_escape

if TYPE_CHECKING:
    from cmlib.audit import AuditLog

LIST_WIDTH = 340  # px: the list name's column in the dialog's form (its checkbox)
STATE_WIDTH = 130  # px: the state's column (a badge, or "not on the list")
CONSENT_OPTIONS = (CONSENT_UNCHANGED, "Yes", "No")  # the API's ConsentToTrack values (sent as they are)
CONSENT_WORDS = {CONSENT_UNCHANGED: N_("Unchanged"), "Yes": N_("Yes"), "No": N_("No")}
NAME_PROMPT_KEY = "subs_operator_name"  # "who is acting?" in the review, when nobody is known


@dataclass
class EditorState:
    email: str
    snapshot: Snapshot
    lists: tuple[ListInfo, ...]
    gen: int = 0
    plan: Plan | None = None
    report: ApplyReport | None = None
    flash: list[tuple[str, str]] = field(default_factory=list)  # (kind, text) shown once
    refresh_on_close: bool = False  # a change may have happened but could not be read back
    rebased: Rebased | None = None  # after a conflict: the operator's choices on the new states

    def all_list_ids(self) -> list[str]:
        ids = [li.list_id for li in self.lists]
        return list(dict.fromkeys(ids + [lid for lid, _ in self.snapshot.states]))

    def info(self, list_id: str) -> ListInfo:
        for li in self.lists:
            if li.list_id == list_id:
                return li
        return ListInfo(list_id, self.snapshot.name_of(list_id))


# ---------------------------------------------------------------- keys (tests build them too)
def state_key(email: str) -> str:
    return f"subs_editor|{email.lower()}"


def checkbox_key(email: str, gen: int, list_id: str) -> str:
    return f"subs_cb|{email.lower()}|{gen}|{list_id}"


def confirm_key(token: str, warning_key: str) -> str:
    return f"subs_ok|{token}|{warning_key}"


def reason_key(token: str) -> str:
    return f"subs_reason|{token}"


def consent_key(token: str) -> str:
    return f"subs_consent|{token}"


def apply_key(token: str) -> str:
    return f"subs_apply|{token}"


def button_key(what: str, email: str) -> str:
    """``what``: open, save, reset, unsub_all, back, retry. (Closing is the dialog's own X or Escape,
    which calls :func:`close_dialog`: one close control, and the frontend puts focus back on the opener.)"""
    return f"subs_{what}|{email.lower()}"


def _clock_time(at: datetime) -> str:
    """``14:32:05 CET``: the same display zone as the Lookup page beside the dialog.

    Escape it (``md_escape``) where it goes into markdown: the frontend reads ``:32:`` as a
    possible emoji short code and, for a text holding one, first loads its emoji plugin (~170 ms
    in a new browser session) before it draws the dialog."""
    try:
        conn: Connection | None = get_connection()
    except CMError:
        conn = None
    return format_time(at, display_zone(conn).zone, fmt="%H:%M:%S")


# ---------------------------------------------------------------- entry point
def _open(email: str) -> None:
    st.session_state[SUBSCRIPTION_DIALOG] = email
    st.session_state.pop(state_key(email), None)  # every opening reads fresh


def subscription_entry(conn: Connection, profile: Profile) -> None:
    """The button at the top of an address tab, and the dialog when it is open for this address.

    A fragment: a click on the button reruns only this (opening the dialog at once) rather than
    the whole page with every tab; Close and Apply rerun the page (``st.rerun``). Drawing the
    button starts reading the client's lists in the background (``Connection.list_catalog``),
    so the dialog opens without a request for them."""
    prefetch_lists(conn)
    _entry(conn, profile)


def prefetch_lists(conn: Connection) -> None:
    """Read the client's lists on the connection's pool unless they are kept and young (cheap
    on every run). A closed connection just skips it: the dialog then reads them itself."""
    with contextlib.suppress(CMError, RuntimeError):
        conn.list_catalog().prefetch(conn.executor)


@st.fragment
def _entry(conn: Connection, profile: Profile) -> None:
    email = profile.email
    if profile.case == CASE_NO_LISTS:
        # A suppressed address is not an easy add (the tab says why up front): no primary button.
        st.button(t("Subscribe to lists…"), key=button_key("open", email),
                  type="secondary" if profile.suppression is not None else "primary",
                  on_click=_open, args=(email,), icon=":material/person_add:",
                  help=t("This address is on no list of the client: choose lists to add it to."))
    else:
        st.button(t("Manage subscriptions"), key=button_key("open", email), on_click=_open, args=(email,),
                  icon=":material/checklist:")
    flagged = st.session_state.get(SUBSCRIPTION_DIALOG)
    if flagged and flagged.lower() == email.lower():
        manage_dialog(conn, email, profile)


def manage_dialog(conn: Connection, email: str, profile: Profile | None = None) -> None:
    """Open the editor for ``email`` (the flag must already name it); ``profile``, the lookup just
    shown, may seed its first display (see ``_load``)."""
    _dialog(conn, email, profile)


def close_dialog() -> None:
    """Forget the open dialog and its state, so the next opening reads fresh.

    A change that may have happened but could not be read back asks the lookup to refetch the
    address now, when the dialog no longer depends on that tab."""
    email = st.session_state.pop(SUBSCRIPTION_DIALOG, None)
    if email:
        ed = st.session_state.pop(state_key(email), None)
        if isinstance(ed, EditorState) and ed.refresh_on_close:
            request_refresh(email)


def _dialog(conn: Connection, email: str, profile: Profile | None = None) -> None:
    """The dialog, titled in the session's language (a decorator's title would be fixed at import)."""
    st.dialog(t("Manage subscriptions"), width="large", on_dismiss=close_dialog)(_dialog_body)(conn, email, profile)


def _dialog_body(conn: Connection, email: str, profile: Profile | None = None) -> None:
    flagged = st.session_state.get(SUBSCRIPTION_DIALOG)
    if not flagged or flagged.lower() != email.lower():
        # The flag was cleared (closed meanwhile, e.g. by its X in another run); only a full rerun closes a dialog.
        st.rerun()
    render_editor(conn, email, profile)


# ---------------------------------------------------------------- the editor
def _load(conn: Connection, email: str, profile: Profile | None = None) -> EditorState:
    """The lookup's states when it is younger than the cache's subscriber expiry (no request for
    states: the dialog opens at once), else a fresh read. Apply re-reads before writing either way.
    The client's lists come from the connection's catalog when it has them (read in the background
    when the button was drawn), else they are read here."""
    seed = None
    if profile is not None and profile.email.lower() == email.lower():
        seed = snapshot_from_lookup(profile, conn.client_id, max_age=seed_max_age(conn.client.cache_settings))
    lists, snapshot = read_for_editing(conn.client, conn.client_id, email, executor=conn.executor, seed=seed,
                                       lists=conn.list_catalog().lists())
    return EditorState(email=email, snapshot=snapshot, lists=lists)


def _init_ticks(ed: EditorState) -> None:
    """Seed the checkbox values of this generation from the snapshot (once per generation)."""
    for lid in ed.all_list_ids():
        k = checkbox_key(ed.email, ed.gen, lid)
        if k not in st.session_state:
            st.session_state[k] = ed.snapshot.is_subscribed(lid)


def _ticks(ed: EditorState) -> dict[str, bool]:
    return {lid: bool(st.session_state.get(checkbox_key(ed.email, ed.gen, lid), ed.snapshot.is_subscribed(lid)))
            for lid in ed.all_list_ids()}


def _restart_from(ed: EditorState, snapshot: Snapshot) -> None:
    """New baseline: fresh checkboxes that show ``snapshot``."""
    ed.snapshot = snapshot
    ed.gen += 1
    ed.plan = None
    _init_ticks(ed)


def _on_reset(email: str) -> None:
    ed: EditorState | None = st.session_state.get(state_key(email))
    if ed is None:
        return
    ed.gen += 1
    ed.plan = None
    ed.report = None
    ed.rebased = None
    _init_ticks(ed)
    ed.flash.append(("info", t("Every checkbox is back to the states read from Campaign Monitor at {time}.",
                               time=_clock_time(ed.snapshot.taken_at))))


def _set_plan(ed: EditorState, plan: Plan) -> None:
    ed.report = None
    ed.rebased = None
    if plan.is_empty:
        ed.plan = None
        ed.flash.append(("info", t("Nothing to change: the ticks match the current subscriptions.")))
    else:
        ed.plan = plan


def _on_save(email: str) -> None:
    ed: EditorState | None = st.session_state.get(state_key(email))
    if ed is not None:
        _set_plan(ed, plan_changes(ed.snapshot, _ticks(ed), ed.lists))


def _on_unsubscribe_all(email: str) -> None:
    ed: EditorState | None = st.session_state.get(state_key(email))
    if ed is None:
        return
    desired = unsubscribe_all_desired(ed.snapshot, ed.lists)
    for lid, want in desired.items():  # the form shows what the plan will do
        st.session_state[checkbox_key(email, ed.gen, lid)] = want
    _set_plan(ed, plan_changes(ed.snapshot, desired, ed.lists))


def _on_back(email: str) -> None:
    ed: EditorState | None = st.session_state.get(state_key(email))
    if ed is not None:
        ed.plan = None


def _on_name_given() -> None:
    set_typed_name(st.session_state.get(NAME_PROMPT_KEY))


def render_editor(conn: Connection, email: str, profile: Profile | None = None) -> None:
    """The dialog's content (also usable inline, e.g. by a test harness)."""
    st.markdown(f"**{md_escape(email)}**")
    key = state_key(email)
    ed: EditorState | None = st.session_state.get(key)
    if ed is None:
        try:
            with st.spinner(t("Reading the current subscriptions…")):
                ed = _load(conn, email, profile)
        except CMError as err:
            st.error(md_escape(t("Could not read the subscriptions of {email}: {reason}. Nothing was changed.",
                                 email=email, reason=describe(err))))
            st.button(t("Try again"), key=button_key("retry", email))  # closing: the dialog's own X (or Escape)
            return
        st.session_state[key] = ed
        _init_ticks(ed)

    for kind, text in ed.flash:
        getattr(st, kind)(md_escape(text))
    ed.flash.clear()
    if ed.report is not None:
        _render_report(ed.report)
    if ed.rebased is not None:
        _render_rebased(ed, ed.rebased)

    snap = ed.snapshot
    if not any(snap.is_subscribed(lid) for lid in ed.all_list_ids()) and not ed.plan:
        st.caption(t("Not subscribed to any list: tick the lists to add the address to, then Save changes."))
    if snap.source == SnapshotSource.LOOKUP:
        st.caption(t("States as of {time}, from the lookup; re-read before any change is written.",
                     time=md_escape(_clock_time(snap.taken_at))))
    else:
        st.caption(t("States as of {time}, read fresh from Campaign Monitor.",
                     time=md_escape(_clock_time(snap.taken_at))))
    _render_form(ed)
    with st.container(horizontal=True, gap="medium"):
        st.button(t("Reset to original values"), key=button_key("reset", email), on_click=_on_reset, args=(email,),
                  icon=":material/undo:", help=t("Put every checkbox back to the states read from Campaign Monitor."))
        st.button(t("Unsubscribe from all lists"), key=button_key("unsub_all", email), on_click=_on_unsubscribe_all,
                  args=(email,), icon=":material/unsubscribe:",
                  disabled=ed.plan is not None or not any(snap.is_subscribed(lid) for lid in ed.all_list_ids()))
    if ed.plan is not None:
        _render_review(conn, ed)


def _render_form(ed: EditorState) -> None:
    # The checkboxes are never disabled: in Streamlit a change of ``disabled`` makes a new widget,
    # which would drop the submitted ticks. A pending plan stands for the ticks as last saved;
    # saving again replaces it.
    with st.form(f"subs_form|{ed.email.lower()}|{ed.gen}", border=True):
        if not ed.lists and not ed.snapshot.states:
            st.info(t("This client has no lists."))
        for lid in ed.all_list_ids():
            li = ed.info(lid)
            state = ed.snapshot.state_of(lid)
            # One row per list: checkbox, state, notes side by side in one horizontal container --
            # three or four elements where columns took seven, so a long list of lists is drawn
            # that much sooner. Fixed widths keep the states and the notes in line.
            with st.container(horizontal=True, vertical_alignment="center", gap="medium"):
                st.checkbox(md_escape(li.name or lid), key=checkbox_key(ed.email, ed.gen, lid), width=LIST_WIDTH)
                if state:
                    render_state_badge(state, width=STATE_WIDTH)
                else:
                    st.caption(t(NOT_ON_LIST), width=STATE_WIDTH)
                bits = []
                if li.unsubscribes_from_all:
                    bits.append(t("unsubscribe leaves ALL lists"))
                if li.confirmed_opt_in:
                    bits.append(t("confirmed opt-in"))
                if li.problem:
                    bits.append(t("settings unknown"))
                if bits:
                    st.caption(md_escape(" · ".join(bits)), width="content")
        st.form_submit_button(t("Save changes"), type="primary", key=button_key("save", ed.email),
                              on_click=_on_save, args=(ed.email,))


def _render_review(conn: Connection, ed: EditorState) -> None:
    plan = ed.plan
    assert plan is not None
    token = plan.token
    with st.container(border=True):
        # Focused when it appears (ui.a11y): a keyboard or screen-reader user is told the plan is here.
        announce_heading(t("Review the change"), step=f"review-{token}")
        st.info(md_escape(t("Plan: {plan}", plan=plan.describe())))
        st.caption(t("This is the plan for the ticks as saved. To change it, change the ticks and Save again."))
        confirmed: set[str] = set()
        for w in plan.warnings:
            st.warning(md_escape(text_of(w.message)))
            if w.needs_confirmation and st.checkbox(t("I understand"), key=confirm_key(token, w.key)):
                confirmed.add(w.key)
        for n in plan.notes:
            st.caption(md_escape(text_of(n)))
        label = (t("Reason (required — e.g. the ticket number)") if plan.needs_reason
                 else t("Reason (optional, for the audit log)"))
        actor = _render_actor(conn)
        reason = st.text_input(label, key=reason_key(token), max_chars=500)
        consent = CONSENT_UNCHANGED
        if plan.needs_consent:
            consent = st.radio(t("Consent to track for the new subscription"), CONSENT_OPTIONS, index=0,
                               horizontal=True, key=consent_key(token), format_func=_consent_word(current_language()),
                               help=t("Sent as ConsentToTrack. Unchanged keeps what Campaign Monitor has."))
        applied = token in st.session_state.setdefault(APPLIED_PLANS, set())
        missing = plan.missing(confirmed, reason or "")
        if actor is None:
            missing.insert(0, t("your name is given (who is acting, for the audit log)"))
        # The same check apply_plan makes before sending anything, said before Apply is pressed.
        leaks = audit_log(conn).find_secrets({"reason": reason or "", "operator_name": actor.name if actor else ""})
        for leak in leaks:
            words = {"field": leak.field.replace("_", " "), "secret": t(leak.label)}
            st.error(md_escape(t(_CONTAINS.get(leak.field, _CONTAINS[""]), **words)), icon=":material/key_off:")
            missing.append(t(_NO_LONGER_CONTAINS.get(leak.field, _NO_LONGER_CONTAINS[""]), **words))
        allowed = require_admin(t("subscription changes"))
        if missing:
            st.caption(md_escape(t("Apply is enabled once: {missing}.", missing="; ".join(missing))))
        c1, c2 = st.columns(2)
        clicked = c1.button(t("Apply"), type="primary", key=apply_key(token),
                            disabled=bool(missing) or applied or not allowed, icon=":material/check:")
        c2.button(t("Change selection"), key=button_key("back", ed.email), on_click=_on_back, args=(ed.email,),
                  disabled=applied)
    if clicked and allowed and not applied and actor is not None and not missing:
        options = ApplyOptions(actor=actor.name, actor_source=actor.source, reason=reason or "",
                               consent=consent or CONSENT_UNCHANGED, confirmed=frozenset(confirmed))
        _apply(conn, ed, plan, options)


def _consent_word(lang: Language) -> Callable[[str], str]:
    """How a consent option reads in ``lang`` (the API's value is what is sent); bound to the run's
    language, so the options read the same wherever they are formatted."""
    return lambda value: t(CONSENT_WORDS.get(value, value), lang=lang)


# A text holding a credential, per field, and what "Apply is enabled once: …" then waits for (the
# credential's label, "the API key", is cmlib.audit_secrets' words).
_CONTAINS = {
    "reason": N_("The reason contains {secret}: remove it. Credentials never go into a reason, an operator name "
                 "or the audit log."),
    "operator_name": N_("The operator name contains {secret}: remove it. Credentials never go into a reason, an "
                        "operator name or the audit log."),
    "": N_("The {field} contains {secret}: remove it. Credentials never go into a reason, an operator name or the "
           "audit log."),
}
_NO_LONGER_CONTAINS = {
    "reason": N_("the reason no longer contains {secret}"),
    "operator_name": N_("the operator name no longer contains {secret}"),
    "": N_("the {field} no longer contains {secret}"),
}

# Where a name holding a credential came from, and so where to fix it (the name itself is never shown).
_CREDENTIAL_IN_NAME: dict[ActorSource | None, str] = {
    ActorSource.TYPED: N_("the name given holds a credential — change it in the sidebar."),
    ActorSource.HELPDESK_LINK: N_("the name from the helpdesk link holds a credential — fix the operator= part "
                                  "of the panel URL in the helpdesk."),
    None: N_("the name given holds a credential — it cannot be recorded."),
}


def _render_actor(conn: Connection) -> Actor | None:
    """"Acting as …" -- or, with nobody signed in and no name typed yet, ask for one (asked once:
    the name is remembered in this browser and shows in the sidebar from then on)."""
    actor = acting()
    if actor is None:
        st.text_input(t("Your name (who is acting, for the audit log)"), key=NAME_PROMPT_KEY, max_chars=MAX_NAME,
                      on_change=_on_name_given, placeholder=t("e.g. Dana from support"),
                      help=t("Asked once: this browser remembers it, in new tabs and links too. "
                             "Change it later in the sidebar."))
        return None
    if actor.source == ActorSource.TYPED:
        remember_in_browser("dialog", lambda: configured_secrets(conn.credentials.api_key))
    if audit_log(conn).find_secrets({"operator_name": actor.name}):  # said below; never shown
        problem = t(_CREDENTIAL_IN_NAME.get(actor.source, _CREDENTIAL_IN_NAME[None]))
        st.caption(":material/badge: " + t("Acting as: {problem}", problem=problem))
    elif actor.source == ActorSource.TYPED:
        st.caption(":material/badge: " + t("Acting as **{name}** — change it in the sidebar.",
                                           name=md_escape(actor.describe())))
    else:
        st.caption(":material/badge: " + t("Acting as **{name}**.", name=md_escape(actor.describe())))
    return actor


def _apply(conn: Connection, ed: EditorState, plan: Plan, options: ApplyOptions) -> None:
    tokens: set[str] = st.session_state.setdefault(APPLIED_PLANS, set())
    if plan.token in tokens:  # a second click on the same plan
        return
    tokens.add(plan.token)  # before the first write: never twice, even if this run dies midway
    with st.spinner(t("Applying the change…")):
        try:
            report = apply_plan(conn.client, plan, options, audit=audit_log(conn))
        except PlanNotReady as exc:
            tokens.discard(plan.token)  # nothing was sent
            ed.flash.append(("error", t("Not applied: {problem}", problem=str(exc))))
        else:
            # State first, before any further Streamlit call: a click that interrupts this run
            # must find the report, not the applied plan.
            _record_outcome(conn, ed, report, options)
    st.rerun()


def _record_outcome(conn: Connection, ed: EditorState, report: ApplyReport, options: ApplyOptions) -> None:
    """Keep the report and pick the next baseline: after a conflict, the re-read with the
    operator's choices carried over; the read-back when there is one; the old snapshot (and the
    ticks) when nothing reached Campaign Monitor; otherwise the tab is refetched when the dialog
    closes, not now (see the module docstring)."""
    ed.report = report
    ed.plan = None
    ed.rebased = None
    if report.conflict and report.new_snapshot is not None:
        request_refresh(ed.email)  # the tab underneath shows the old states too
        _rebase(ed, report.new_snapshot, options)
        return
    if report.new_snapshot is not None:
        request_refresh(ed.email)
        _restart_from(ed, report.new_snapshot)
        return
    if not report.written:
        return  # nothing was sent: the snapshot is still the truth and the ticks stay for another try
    ed.refresh_on_close = True
    ed.flash.append(("warning", t("The states could not be read again after the change; close and reopen the "
                                  "dialog before another change.")))


def _rebase(ed: EditorState, snapshot: Snapshot, options: ApplyOptions) -> None:
    """After a conflict: the operator's ticks carried over to ``snapshot`` in fresh checkboxes,
    and a new plan from them to confirm again (same reason and consent; warnings unticked)."""
    rebased = rebase_choices(ed.snapshot, snapshot, _ticks(ed))  # the ticks of the current generation
    ed.rebased = rebased
    ed.snapshot = snapshot
    ed.gen += 1
    for lid, want in rebased.ticks.items():
        st.session_state[checkbox_key(ed.email, ed.gen, lid)] = want
    _init_ticks(ed)  # lists the ticks do not mention start from the new snapshot
    plan = plan_changes(snapshot, _ticks(ed), ed.lists)
    if plan.is_empty:
        return
    ed.plan = plan
    if options.reason:
        st.session_state[reason_key(plan.token)] = options.reason
    if plan.needs_consent and options.consent in CONSENT_OPTIONS:
        st.session_state[consent_key(plan.token)] = options.consent


def _render_rebased(ed: EditorState, rebased: Rebased) -> None:
    if rebased.kept and ed.plan is not None and ed.plan.confirmation_keys:
        head = t("Your choices are kept on the current states below: review the plan and press Apply again "
                 "(its warnings must be ticked again).")
    elif rebased.kept:
        head = t("Your choices are kept on the current states below: review the plan and press Apply again.")
    else:
        head = t("Nothing is left to change: the current states already match your choices.")
    st.info(md_escape(" ".join([head, *rebased.describe()])), icon=":material/sync_problem:")


def audit_log(conn: Connection | None = None) -> AuditLog:
    """The audit log, told every configured secret (the API key, the admin password, secrets.toml
    credentials) so it refuses any row -- and apply_plan any reason -- that would contain one.
    Imported here, when a change is about to be written: the log loads SQLAlchemy, which the
    page's first paint does without."""
    from cmlib.audit import AuditLog

    return AuditLog(secrets=configured_secrets(conn.credentials.api_key if conn is not None else None))


_STATUS_ICON = {Outcome.DONE: ":material/check_circle:", Outcome.ALREADY: ":material/task_alt:",
                Outcome.QUEUED: ":material/schedule:", Outcome.FAILED: ":material/error:",
                Outcome.UNKNOWN: ":material/help:", Outcome.NOT_SENT: ":material/block:"}


def _render_report(report: ApplyReport) -> None:
    """Each change's verdict, under a head that says what the whole came to: nothing written
    (conflict, API unreachable), unknown, partly applied (what went through and what did not),
    already so, queued or applied."""
    lines = [f"{_STATUS_ICON.get(r.status, ':material/help:')} {md_escape(r.describe())}" for r in report.results]
    body = "\n\n".join(lines)
    if report.conflict:
        st.error(md_escape(report.summary()))
    elif report.problem:
        head = report.summary()
        if report.unreachable:
            head = t("{summary} Your ticks are kept: when Campaign Monitor answers again, press Save changes and "
                     "Apply again.", summary=head)
        st.error(md_escape(head) + ("\n\n" + body if body else ""))
    elif report.unknown:
        head = nt("Unknown outcome: the answer to {n} change was lost and the read-back could not tell whether "
                  "it happened. Do not assume either way: check as described below.",
                  "Unknown outcome: the answers to {n} changes were lost and the read-back could not tell whether "
                  "they happened. Do not assume either way: check as described below.", len(report.unknown))
        st.warning(md_escape(head) + "\n\n" + body)
    elif report.failed or report.not_sent:
        bad = len(report.failed + report.not_sent)
        done = len([r for r in report.results if r.status not in (Outcome.FAILED, Outcome.NOT_SENT)])
        if done:
            head = t("Partly applied: {failed}, {done}. Nothing else was changed.",
                     failed=nt("{n} change failed", "{n} changes failed", bad),
                     done=nt("{n} went through", "{n} went through", done))
        else:
            head = t("Not applied: {failed}. Nothing was changed.",
                     failed=nt("{n} change failed", "{n} changes failed", bad))
        st.error(md_escape(head) + "\n\n" + body)
    elif report.results and all(r.status == Outcome.ALREADY for r in report.results):
        st.success(md_escape(t("Already so: nothing needed sending.")) + "\n\n" + body)
    elif any(r.status == Outcome.QUEUED for r in report.results):
        st.warning(md_escape(t("Applied; Campaign Monitor is still processing some of it.")) + "\n\n" + body)
    else:
        st.success(md_escape(t("Applied.")) + "\n\n" + body)
    if report.audit_problem:
        st.error(md_escape(t("The audit log could not store these rows: {problem}",
                             problem=text_of(report.audit_problem))))
