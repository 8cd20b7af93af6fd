"""The sandbox's live state and the rules Campaign Monitor applies to writes.

One lock guards every read and write: the HTTP server answers on many threads and a test may
flip a state while a lookup runs. Campaigns, history and lists come shared and frozen from the
:class:`~cmlib.sandbox.model.World`; subscriber records and the suppression list are copied per
store, so every Sandbox starts from the same seeded data and writes never leak between them.

The rules (see cm-api.md "Writes"):
- add: a new address becomes Active, or Unconfirmed on a ConfirmedOptIn list; an existing
  Active/Unconfirmed one is updated; Unsubscribed/Deleted/Bounced answer 206/205/207 unless
  Resubscribe, which re-adds it; a suppressed address answers 204 unless Resubscribe, which
  removes it from the suppression list first.
- unsubscribe: on an ``AllClientLists`` list, every list of the client the address is on.
- delete: the record stays, in state Deleted.
- consent to track: ``Yes``/``No`` is stored as sent; ``Unchanged`` keeps what is stored. A new
  record gets the consent the client already holds for the address on another list, else
  ``No``: nobody said yes, and "Unchanged" is an instruction, never a stored value (our choice
  where Campaign Monitor's documentation is silent: the privacy-safe reading).
- ``Date`` moves only when the state changes; ``ListJoinedDate`` never moves.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from .errors import STATE_CONFLICT_CODE, ApiError
from .model import (
    ACTIVE,
    DELETED,
    UNCONFIRMED,
    UNSUBSCRIBED,
    ClientInfo,
    MailingList,
    Membership,
    SentCampaign,
    SubscriberRecord,
    SuppressionEntry,
    World,
    email_key,
)

CONSENT_VALUES = ("Yes", "No", "Unchanged")


def _anchored_clock(start: datetime) -> Callable[[], datetime]:
    """Writes happen at the world's "now" plus the real time elapsed since the store was made.

    With the default now (the real time, truncated to the minute) that is about the real time;
    with a fixed now in tests, written dates stay right after the seeded ones.
    """
    t0 = time.monotonic()

    def clock() -> datetime:
        return start + timedelta(seconds=int(time.monotonic() - t0) + 1)

    return clock


def _field_key(key: Any) -> str:
    """Writes may name a field ``[City]`` or ``City``; reads always say ``City``."""
    k = str(key or "").strip()
    if k.startswith("[") and k.endswith("]"):
        k = k[1:-1]
    return k


class Store:
    """Thread-safe in-memory account; also the helper API tests use (``sb.data``)."""

    def __init__(self, world: World, *, clock: Callable[[], datetime] | None = None) -> None:
        self._lock = threading.RLock()
        self.world = world
        self.seed = world.seed
        self.now = world.now
        self.clock: Callable[[], datetime] = clock or _anchored_clock(world.now)
        self._clients: dict[str, ClientInfo] = {c.client_id: c for c in world.clients}
        self._lists: dict[str, MailingList] = {lst.list_id: lst for lst in world.lists}
        self._client_lists: dict[str, list[str]] = {c.client_id: [] for c in world.clients}
        for lst in world.lists:
            self._client_lists[lst.client_id].append(lst.list_id)
        self._members: dict[str, dict[str, SubscriberRecord]] = {lid: {} for lid in self._lists}
        for rec in world.records:
            self._members[rec.list_id][email_key(rec.email)] = rec.copy()
        self._suppression: dict[str, dict[str, SuppressionEntry]] = {
            cid: {email_key(e.email): e for e in world.suppression.get(cid, ())} for cid in self._clients
        }
        self._campaigns: dict[str, SentCampaign] = {c.campaign_id: c for c in world.campaigns}
        self._campaigns_by_client: dict[str, list[SentCampaign]] = {cid: [] for cid in self._clients}
        for c in sorted(world.campaigns, key=lambda c: (c.sent_date, c.campaign_id), reverse=True):
            self._campaigns_by_client[c.client_id].append(c)

    # ------------------------------------------------------------------ accounts & keys
    @property
    def account_api_key(self) -> str:
        return self.world.account_api_key

    def clients_for_key(self, api_key: str) -> tuple[str, ...] | None:
        """Client IDs an API key may use, or None for an unknown key."""
        if api_key == self.world.account_api_key:
            return tuple(c.client_id for c in self.world.clients)
        cid = self.world.client_api_keys.get(api_key)
        return (cid,) if cid else None

    def clients(self) -> list[ClientInfo]:
        return list(self.world.clients)

    def client(self, client_id: str) -> ClientInfo | None:
        return self._clients.get(client_id)

    # ------------------------------------------------------------------ lists
    def lists_of(self, client_id: str) -> list[MailingList]:
        return [self._lists[lid] for lid in self._client_lists.get(client_id, ())]

    def get_list(self, list_id: str) -> MailingList | None:
        return self._lists.get(list_id)

    def list_by_name(self, client_id: str, name: str) -> MailingList:
        """The client's list with exactly this name; KeyError if there is none."""
        for lst in self.lists_of(client_id):
            if lst.name == name:
                return lst
        raise KeyError(f"no list named {name!r} in client {client_id}")

    # ------------------------------------------------------------------ subscribers (reads)
    def record(self, list_id: str, email: str) -> SubscriberRecord | None:
        """A copy of the (list, address) record, or None if the address was never on the list."""
        with self._lock:
            rec = self._members.get(list_id, {}).get(email_key(email))
            return rec.copy() if rec else None

    def state_of(self, list_id: str, email: str) -> str | None:
        rec = self.record(list_id, email)
        return rec.state if rec else None

    def memberships(self, client_id: str, email: str) -> list[Membership]:
        """Every list of the client the address is on (any state, Deleted included), list order."""
        key = email_key(email)
        out: list[Membership] = []
        with self._lock:
            for lid in self._client_lists.get(client_id, ()):
                rec = self._members[lid].get(key)
                if rec is not None:
                    out.append(Membership(lid, self._lists[lid].name, rec.state, rec.joined))
        return out

    def subscribers_in_state(self, list_id: str, state: str, since: datetime | None = None) -> list[SubscriberRecord]:
        """Copies of the list's records in ``state`` (changed at or after ``since``)."""
        with self._lock:
            return [r.copy() for r in self._members.get(list_id, {}).values()
                    if r.state == state and (since is None or r.date >= since)]

    def emails(self, client_id: str) -> list[str]:
        """Every address on any list of the client, as stored, in first-seen order."""
        seen: dict[str, str] = {}
        with self._lock:
            for lid in self._client_lists.get(client_id, ()):
                for key, rec in self._members[lid].items():
                    seen.setdefault(key, rec.email)
        return list(seen.values())

    # ------------------------------------------------------------------ campaigns & history
    def sent_campaigns(self, client_id: str) -> list[SentCampaign]:
        """The client's sent campaigns, newest first by SentDate."""
        return list(self._campaigns_by_client.get(client_id, ()))

    def campaign(self, campaign_id: str) -> SentCampaign | None:
        return self._campaigns.get(campaign_id)

    def history(self, list_id: str, email: str) -> list[dict[str, Any]]:
        """The raw ``history.json`` body for (list, address): one item per campaign, newest first.

        [] when nothing was sent (the API answers 203 instead when the address is not on the list).
        """
        key = email_key(email)
        out = []
        for cid in self.world.sent_via.get((list_id, key), ()):
            camp = self._campaigns[cid]
            out.append({
                "ID": cid,
                "Type": "Campaign",
                "Name": camp.name,
                "Actions": [a.to_api() for a in self.world.actions.get((cid, key), ())],
            })
        return out

    # ------------------------------------------------------------------ suppression
    def suppression(self, client_id: str) -> list[SuppressionEntry]:
        with self._lock:
            return list(self._suppression.get(client_id, {}).values())

    def is_suppressed(self, client_id: str, email: str) -> bool:
        with self._lock:
            return email_key(email) in self._suppression.get(client_id, {})

    def suppress(self, client_id: str, email: str, reason: str = "Manually Suppressed") -> None:
        """Test helper: put an address on the client's suppression list."""
        with self._lock:
            self._suppression[client_id][email_key(email)] = SuppressionEntry(email, reason, self.clock())

    def unsuppress(self, client_id: str, email: str) -> bool:
        with self._lock:
            return self._suppression[client_id].pop(email_key(email), None) is not None

    # ------------------------------------------------------------------ writes (API rules)
    def add_subscriber(
        self,
        list_id: str,
        email: str,
        *,
        name: str | None = None,
        custom_fields: Iterable[dict] = (),
        resubscribe: bool = False,
        consent_to_track: str = "Unchanged",
    ) -> str:
        """POST /subscribers/{listid}.json after validation. Returns the address as given."""
        lst = self._require_list(list_id)
        key = email_key(email)
        with self._lock:
            now = self.clock()
            supp = self._suppression[lst.client_id]
            if key in supp:
                if not resubscribe:
                    raise ApiError(204)
                del supp[key]
            members = self._members[list_id]
            rec = members.get(key)
            target = UNCONFIRMED if lst.confirmed_opt_in else ACTIVE
            consent = self._consent_for(lst.client_id, key, consent_to_track)
            if rec is None:
                rec = SubscriberRecord(list_id, email, name or "", target, now, now, consent_to_track=consent)
                members[key] = rec
            elif rec.state in STATE_CONFLICT_CODE:
                if not resubscribe:
                    raise ApiError(STATE_CONFLICT_CODE[rec.state])
                rec.state, rec.date = target, now
            # Active or Unconfirmed: an update; the state and its Date stay (208 is not raised).
            if name:  # an empty Name (our client's default) keeps the stored one
                rec.name = name
            if consent_to_track != "Unchanged":
                rec.consent_to_track = consent_to_track
            rec.custom_fields = self._merge_fields(rec.custom_fields, custom_fields)
        return email

    def _consent_for(self, client_id: str, key: str, consent_to_track: str) -> str:
        """Under the lock: the consent a write leaves stored for a new record of ``key``."""
        if consent_to_track != "Unchanged":
            return consent_to_track
        for lid in self._client_lists[client_id]:
            rec = self._members[lid].get(key)
            if rec is not None and rec.consent_to_track in ("Yes", "No"):
                return rec.consent_to_track
        return "No"

    def unsubscribe(self, list_id: str, email: str) -> list[str]:
        """POST .../unsubscribe.json. Returns the list IDs whose state changed.

        203 when the address was never on the list or is Deleted there.
        """
        lst = self._require_list(list_id)
        key = email_key(email)
        with self._lock:
            rec = self._members[list_id].get(key)
            if rec is None or rec.state == DELETED:
                raise ApiError(203)
            targets = [list_id]
            if lst.unsubscribes_from_all:
                targets = [lid for lid in self._client_lists[lst.client_id] if key in self._members[lid]]
            now = self.clock()
            changed = []
            for lid in targets:
                r = self._members[lid][key]
                if r.state not in (UNSUBSCRIBED, DELETED):
                    r.state, r.date = UNSUBSCRIBED, now
                    changed.append(lid)
            return changed

    def delete(self, list_id: str, email: str) -> None:
        """DELETE /subscribers/{listid}.json: the record stays, in state Deleted."""
        self._require_list(list_id)
        with self._lock:
            rec = self._members[list_id].get(email_key(email))
            if rec is None or rec.state == DELETED:
                raise ApiError(203)
            rec.state, rec.date = DELETED, self.clock()

    # ------------------------------------------------------------------ test helpers
    def set_state(self, list_id: str, email: str, state: str, *, at: datetime | None = None,
                  cascade: bool = False) -> None:
        """Force a state as if the person (or CM) changed it outside the API.

        Creates the record if missing. ``Date`` moves only if the state differs. With
        ``cascade=True`` an Unsubscribed on an AllClientLists list spreads like a real
        unsubscribe link would.
        """
        lst = self._require_list(list_id)
        key = email_key(email)
        with self._lock:
            when = at or self.clock()
            members = self._members[list_id]
            rec = members.get(key)
            if rec is None:
                members[key] = SubscriberRecord(list_id, email, "", state, when, when)
            elif rec.state != state:
                rec.state, rec.date = state, when
            if cascade and state == UNSUBSCRIBED and lst.unsubscribes_from_all:
                for lid in self._client_lists[lst.client_id]:
                    r = self._members[lid].get(key)
                    if r is not None and r.state not in (UNSUBSCRIBED, DELETED):
                        r.state, r.date = UNSUBSCRIBED, when

    def _require_list(self, list_id: str) -> MailingList:
        lst = self._lists.get(list_id)
        if lst is None:
            raise ApiError(101)
        return lst

    @staticmethod
    def _merge_fields(current: list[tuple[str, str]], incoming: Iterable[dict]) -> list[tuple[str, str]]:
        """Replace every field named in the write (a multi-select repeats its Key); ``Clear`` drops it."""
        incoming = [f for f in incoming or () if isinstance(f, dict)]
        if not incoming:
            return current
        named = {_field_key(f.get("Key")) for f in incoming}
        out = [(k, v) for k, v in current if k not in named]
        for f in incoming:
            k = _field_key(f.get("Key"))
            if not k or f.get("Clear") or f.get("Value") is None:
                continue
            out.append((k, str(f.get("Value"))))
        return out
