"""Changing an address's subscriptions without surprises: snapshot, plan, apply, verdict.

One job per module:

* :mod:`.snapshot` -- the client's lists with their settings, and a fresh snapshot of one
  address's states (the baseline every change is measured from);
* :mod:`.catalog` -- those lists read in the background once the dialog's button is drawn, so
  opening the dialog sends no request for them (owned by the connection);
* :mod:`.plan` -- the ticks compared with the snapshot: the steps, in words, with the warnings
  Campaign Monitor's own rules call for (all-lists unsubscribes, resubscribes, suppression);
* :mod:`.apply` -- the plan sent under the per-address write lock after a conflict check, each
  write once, read back, every attempt audited;
* :mod:`.verdict` -- what each attempt came to (done, already so, queued, failed, unknown, not
  sent...) and the report the dialog shows;
* :mod:`.rebase` -- after a conflict, the operator's choices carried over to the new states, to
  be confirmed again;
* :mod:`.wording` -- the words they share (states, names), and the audit log's stored English
  read back for the Audit page (their sentences are lazy: English in the audit log, the
  operator's language in the dialog; see :mod:`cmlib.lazy_text`).

Everything a caller needs is importable from ``cmlib.subscriptions`` itself.
"""
from __future__ import annotations

from .apply import ApplyOptions, apply_plan
from .plan import (
    CONSENT_UNCHANGED,
    Action,
    Plan,
    PlanNotReady,
    PlanWarning,
    Step,
    WarningKind,
    action_text,
    join_names,
    plan_changes,
    unsubscribe_all_desired,
)
from .rebase import Rebased, rebase_choices
from .snapshot import (
    NOT_ON_LIST,
    ListInfo,
    LookupSeed,
    Snapshot,
    SnapshotSource,
    StateChange,
    diff_states,
    load_lists,
    read_for_editing,
    seed_max_age,
    snapshot_from_lookup,
    state_text,
    take_snapshot,
)
from .verdict import ApplyReport, StepResult, localise_result

__all__ = [
    "CONSENT_UNCHANGED",
    "NOT_ON_LIST",
    "Action",
    "ApplyOptions",
    "ApplyReport",
    "ListInfo",
    "LookupSeed",
    "Plan",
    "PlanNotReady",
    "PlanWarning",
    "Rebased",
    "Snapshot",
    "SnapshotSource",
    "StateChange",
    "Step",
    "StepResult",
    "WarningKind",
    "action_text",
    "apply_plan",
    "diff_states",
    "join_names",
    "load_lists",
    "localise_result",
    "plan_changes",
    "read_for_editing",
    "rebase_choices",
    "seed_max_age",
    "snapshot_from_lookup",
    "state_text",
    "take_snapshot",
    "unsubscribe_all_desired",
]
