"""A durable job's input and results as plain JSON, and back.

The job tables (:mod:`.job_store`) keep a run's input rows, its per-row results and its
suppression entries as JSON so any replica can rebuild exactly the objects the page already
renders (:class:`~.validate.BulkInput`, :class:`~.engine.LookupResult`,
:class:`~cmlib.models.SuppressedAddress`). JSON, never pickle: whoever can write to the database
must not be able to run code in the app or the worker. Short keys on purpose: a 100,000-row
run stores 100,000 of these.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .. import lazy_text
from ..models import SuppressedAddress
from .engine import ActivitySummary, LookupResult
from .table import Detected
from .validate import BulkInput, Counts, InputRow, InputSource, Verdict

__all__ = [
    "decode_input_meta", "decode_result", "decode_row", "decode_suppressed", "encode_input_meta", "encode_result",
    "encode_row", "encode_suppressed",
]


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


# --------------------------------------------------------------------------- input
def encode_input_meta(bi: BulkInput) -> dict[str, Any]:
    """Everything of a :class:`BulkInput` but its rows (those go one per table row)."""
    d = bi.detected
    return {
        "detected": {"encoding": d.encoding, "delimiter": d.delimiter, "has_header": d.has_header,
                     "columns": list(d.columns), "email_column": d.email_column,
                     "email_column_reason": d.email_column_reason, "flat_list": d.flat_list},
        "counts": [bi.counts.rows, bi.counts.valid, bi.counts.invalid, bi.counts.duplicates],
        "extra_columns": list(bi.extra_columns),
        "source_name": bi.source_name,
        "source": str(bi.source),
    }


def decode_input_meta(meta: Mapping[str, Any], rows: Sequence[InputRow]) -> BulkInput:
    d = meta["detected"]
    detected = Detected(encoding=d["encoding"], delimiter=d["delimiter"], has_header=bool(d["has_header"]),
                        columns=tuple(d["columns"]), email_column=d["email_column"],
                        email_column_reason=d["email_column_reason"], flat_list=bool(d.get("flat_list")))
    rows_n, valid, invalid, duplicates = (int(n) for n in meta["counts"])
    return BulkInput(detected=detected, rows=tuple(rows), counts=Counts(rows_n, valid, invalid, duplicates),
                     extra_columns=tuple(meta["extra_columns"]), source_name=meta.get("source_name") or "",
                     source=InputSource(meta.get("source") or InputSource.PASTED))


def encode_row(row: InputRow) -> dict[str, Any]:
    """The columns of one input row (see ``job_store.rows_table``)."""
    return {"row_no": row.row, "raw": row.raw, "email": row.email, "extra": list(row.extra),
            "status": str(row.status), "reason": row.reason, "duplicate_of": row.duplicate_of}


def decode_row(values: Mapping[Any, Any]) -> InputRow:
    return InputRow(row=int(values["row_no"]), raw=values["raw"], email=values["email"],
                    extra=tuple(values["extra"] or ()), status=Verdict(values["status"]),
                    reason=values["reason"] or "", duplicate_of=values["duplicate_of"])


# --------------------------------------------------------------------------- results
def encode_result(res: LookupResult) -> dict[str, Any]:
    out: dict[str, Any] = {"m": [list(pair) for pair in res.memberships]}
    if res.activity is not None:
        a = res.activity
        out["a"] = [a.received, a.opened, a.clicked, a.open_rate, a.click_rate, a.last_campaign, _time(a.last_sent)]
    if res.error is not None:
        out["e"] = lazy_text.to_json(res.error)  # a reason stays translatable where it is read
    if res.warning is not None:
        out["w"] = lazy_text.to_json(res.warning)
    return out


def decode_result(email: str, data: Mapping[str, Any]) -> LookupResult:
    activity = None
    if data.get("a") is not None:
        received, opened, clicked, open_rate, click_rate, last_campaign, last_sent = data["a"]
        activity = ActivitySummary(int(received), int(opened), int(clicked), float(open_rate), float(click_rate),
                                   last_campaign or "", _parse_time(last_sent))
    return LookupResult(email=email, memberships=tuple((str(lid), str(state)) for lid, state in data.get("m") or ()),
                        activity=activity, error=lazy_text.from_json(data.get("e")),
                        warning=lazy_text.from_json(data.get("w")))


# --------------------------------------------------------------------------- suppression
def encode_suppressed(entry: SuppressedAddress) -> dict[str, Any]:
    return {"email": entry.email, "reason": entry.reason, "date": _time(entry.date), "state": entry.state}


def decode_suppressed(data: Mapping[str, Any]) -> SuppressedAddress:
    return SuppressedAddress(email=data["email"], reason=data.get("reason") or "", date=_parse_time(data.get("date")),
                             state=data.get("state") or "Suppressed")
