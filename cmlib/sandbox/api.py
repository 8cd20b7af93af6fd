"""The emulated v3.3 endpoints: routing, authentication, parameter checks and response shapes.

No HTTP here (server.py owns sockets and fault injection): this layer turns (method, path,
query, body, Authorization) into a status and a JSON-able body shaped exactly like the fixtures
in shared/cm-fixtures, and raises :class:`ApiError` with the code Campaign Monitor would send.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..models import parse_date
from . import demo
from .errors import ApiError
from .model import ClientInfo, MailingList, format_date
from .store import CONSENT_VALUES, Store

BASE_PATH = "/api/v3.3"
NO_BODY = object()  # marker: answer with an empty body (unsubscribe, delete)

# (method, path pattern without ".json", endpoint kind). Kinds name the request counters.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", r"/clients", "clients"),
    ("GET", r"/clients/(?P<client_id>[^/]+)", "client_details"),
    ("GET", r"/clients/(?P<client_id>[^/]+)/lists", "lists"),
    ("GET", r"/clients/(?P<client_id>[^/]+)/listsforemail", "listsforemail"),
    ("GET", r"/clients/(?P<client_id>[^/]+)/campaigns", "campaigns"),
    ("GET", r"/clients/(?P<client_id>[^/]+)/suppressionlist", "suppressionlist"),
    ("GET", r"/lists/(?P<list_id>[^/]+)", "list_details"),
    ("GET", r"/lists/(?P<list_id>[^/]+)/(?P<state>active|unconfirmed|unsubscribed|bounced|deleted)",
     "list_subscribers"),
    ("GET", r"/subscribers/(?P<list_id>[^/]+)", "subscriber"),
    ("GET", r"/subscribers/(?P<list_id>[^/]+)/history", "history"),
    ("POST", r"/subscribers/(?P<list_id>[^/]+)", "add"),
    ("POST", r"/subscribers/(?P<list_id>[^/]+)/unsubscribe", "unsubscribe"),
    ("DELETE", r"/subscribers/(?P<list_id>[^/]+)", "delete"),
)
_COMPILED = tuple((m, re.compile(p + r"\Z"), k) for m, p, k in ROUTES)

# Local part per RFC 5322 "atext" with dots between atoms; a space (a '+' sent unencoded) fails.
_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_STATE_OF_PATH = {"active": "Active", "unconfirmed": "Unconfirmed", "unsubscribed": "Unsubscribed",
                  "bounced": "Bounced", "deleted": "Deleted"}


@dataclass(frozen=True)
class Route:
    kind: str
    params: dict[str, str] = field(default_factory=dict)
    json_suffix: bool = True


def match_route(method: str, path: str) -> Route | None:
    """The route for a request path (with the base path), or None for an unknown path.

    A known path without ``.json`` matches with ``json_suffix=False``: the real API would
    answer XML, the sandbox answers a 404 saying so.
    """
    if not path.startswith(BASE_PATH + "/"):
        return None
    sub = path[len(BASE_PATH):]
    suffix = sub.endswith(".json")
    if suffix:
        sub = sub[: -len(".json")]
    elif sub.endswith(".xml"):
        sub = sub[: -len(".xml")]
    for m, rx, kind in _COMPILED:
        hit = rx.match(sub)
        if hit and m == method:
            return Route(kind, {k: v for k, v in hit.groupdict().items() if v is not None}, suffix)
    return None


@dataclass(frozen=True)
class Principal:
    """Who is calling. ``key_id`` is a hash (rate-limit windows must not hold the key itself)."""

    key_id: str
    client_ids: tuple[str, ...]


@dataclass
class ApiResponse:
    status: int
    body: Any = NO_BODY

    def payload(self) -> bytes:
        if self.body is NO_BODY:
            return b""
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


def valid_email(value: str | None) -> bool:
    return value is not None and 0 < len(value) <= 254 and _EMAIL_RE.match(value) is not None


def _first(query: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    values = query.get(name)
    return values[0] if values else default


@dataclass(frozen=True)
class Paging:
    page: int
    page_size: int
    direction: str
    order_field: str


def parse_paging(query: dict[str, list[str]], *, default_direction: str, order_fields: tuple[str, ...] = (),
                 default_field: str = "") -> Paging:
    """page >= 1 (800), pagesize 10..1000 (801), orderfield known (802), orderdirection asc/desc (803)."""
    try:
        page = int(_first(query, "page", "1") or "1")
    except ValueError:
        raise ApiError(800) from None
    if page < 1:
        raise ApiError(800)
    try:
        size = int(_first(query, "pagesize", "1000") or "1000")
    except ValueError:
        raise ApiError(801) from None
    if not 10 <= size <= 1000:
        raise ApiError(801)
    order_field = default_field
    if order_fields:
        order_field = (_first(query, "orderfield", default_field) or default_field).lower()
        if order_field not in order_fields:
            raise ApiError(802)
    direction = (_first(query, "orderdirection", default_direction) or default_direction).lower()
    if direction not in ("asc", "desc"):
        raise ApiError(803)
    return Paging(page, size, direction, order_field)


def envelope(items: list[dict], paging: Paging, ordered_by: str) -> dict[str, Any]:
    """The paged envelope; NumberOfPages is 0 for an empty result (PageNumber stays as asked)."""
    total = len(items)
    start = (paging.page - 1) * paging.page_size
    results = items[start:start + paging.page_size]
    return {
        "Results": results,
        "ResultsOrderedBy": ordered_by,
        "OrderDirection": paging.direction,
        "PageNumber": paging.page,
        "PageSize": paging.page_size,
        "RecordsOnThisPage": len(results),
        "TotalNumberOfRecords": total,
        "NumberOfPages": math.ceil(total / paging.page_size) if total else 0,
    }


class Endpoints:
    """Every emulated endpoint, bound to one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._handlers: dict[str, Callable[[Route, Principal, dict, bytes], ApiResponse]] = {
            "clients": self._clients,
            "client_details": self._client_details,
            "lists": self._lists,
            "listsforemail": self._lists_for_email,
            "campaigns": self._campaigns,
            "suppressionlist": self._suppression_list,
            "list_details": self._list_details,
            "list_subscribers": self._list_subscribers,
            "subscriber": self._subscriber,
            "history": self._history,
            "add": self._add,
            "unsubscribe": self._unsubscribe,
            "delete": self._delete,
        }

    # ------------------------------------------------------------------ auth
    def authenticate(self, authorization: str | None) -> Principal:
        """Basic ``key:x`` -> Principal. No/garbled header: 50; unknown key: 100; Bearer: 120."""
        if not authorization:
            raise ApiError(50)
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            raise ApiError(120)  # the sandbox has no OAuth applications
        if scheme.lower() != "basic" or not value.strip():
            raise ApiError(50)
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(50) from None
        key = decoded.partition(":")[0]
        if not key:
            raise ApiError(50)
        clients = self.store.clients_for_key(key)
        if clients is None:
            raise ApiError(100)
        return Principal(hashlib.sha256(key.encode()).hexdigest()[:16], clients)

    def call(self, route: Route, principal: Principal, query: dict[str, list[str]], body: bytes) -> ApiResponse:
        return self._handlers[route.kind](route, principal, query, body)

    # ------------------------------------------------------------------ access checks
    def _client(self, principal: Principal, client_id: str) -> ClientInfo:
        info = self.store.client(client_id)
        if info is None or client_id not in principal.client_ids:
            raise ApiError(102)
        return info

    def _list(self, principal: Principal, list_id: str) -> MailingList:
        lst = self.store.get_list(list_id)
        if lst is None or lst.client_id not in principal.client_ids:
            raise ApiError(101)
        return lst

    @staticmethod
    def _email(value: Any) -> str:
        if not isinstance(value, str) or not valid_email(value):
            raise ApiError(1)
        return value

    @staticmethod
    def _json_body(body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400) from None
        if not isinstance(data, dict):
            raise ApiError(400)
        return data

    # ------------------------------------------------------------------ clients
    def _clients(self, route: Route, principal: Principal, query: dict, body: bytes) -> ApiResponse:
        rows = [{"ClientID": c.client_id, "Name": c.name} for c in self.store.clients()
                if c.client_id in principal.client_ids]
        return ApiResponse(200, rows)

    def _client_details(self, route: Route, principal: Principal, query: dict, body: bytes) -> ApiResponse:
        c = self._client(principal, route.params["client_id"])
        return ApiResponse(200, {
            "ApiKey": demo.ECHOED_API_KEY,  # never the key that was used
            "AccessDetails": {"Username": c.username, "AccessLevel": 23},
            "BasicDetails": {
                "ClientID": c.client_id,
                "CompanyName": c.name,
                "ContactName": c.contact_name,
                "EmailAddress": c.email_address,
                "Country": c.country,
                "TimeZone": c.time_zone,
            },
            "BillingDetails": {
                "CanPurchaseCredits": True, "Credits": 500, "ClientPays": True,
                "BaseRatePerRecipient": 1.0, "MarkupPerRecipient": 0.0, "MarkupOnDelivery": 0.0,
                "BaseDeliveryRate": 5.0, "Currency": "USD", "BaseDesignSpamTestRate": 5.0,
            },
        })

    def _lists(self, route: Route, principal: Principal, query: dict, body: bytes) -> ApiResponse:
        c = self._client(principal, route.params["client_id"])
        return ApiResponse(200, [{"ListID": lst.list_id, "Name": lst.name} for lst in self.store.lists_of(c.client_id)])

    def _lists_for_email(self, route: Route, principal: Principal, query: dict, body: bytes) -> ApiResponse:
        c = self._client(principal, route.params["client_id"])
        email = self._email(_first(query, "email"))
        return ApiResponse(200, [
            {"ListID": m.list_id, "ListName": m.list_name, "SubscriberState": m.state,
             "DateSubscriberAdded": format_date(m.date_added)}
            for m in self.store.memberships(c.client_id, email)
        ])

    def _campaigns(self, route: Route, principal: Principal, query: dict, body: bytes) -> ApiResponse:
        c = self._client(principal, route.params["client_id"])
        paging = parse_paging(query, default_direction="desc")
        campaigns = self.store.sent_campaigns(c.client_id)  # newest first
        since = parse_date(_first(query, "sentfromdate") or "")
        until = parse_date(_first(query, "senttodate") or "")
        tags = [t.strip().lower() for t in (_first(query, "tags") or "").split(",") if t.strip()]
        if since:
            campaigns = [x for x in campaigns if x.sent_date >= since]
        if until:
            campaigns = [x for x in campaigns if x.sent_date.date() <= until.date()]
        if tags:
            campaigns = [x for x in campaigns if any(t.lower() in tags for t in x.tags)]
        if paging.direction == "asc":
            campaigns = list(reversed(campaigns))
        return ApiResponse(200, envelope([x.to_api() for x in campaigns], paging, "SentDate"))

    def _suppression_list(self, route: Route, principal: Principal, query: dict, body: bytes) -> ApiResponse:
        c = self._client(principal, route.params["client_id"])
        paging = parse_paging(query, default_direction="asc", order_fields=("email", "date"), default_field="email")
        entries = self.store.suppression(c.client_id)
        key: Callable[[Any], Any] = (lambda e: e.email.lower()) if paging.order_field == "email" else (lambda e: e.date)
        entries.sort(key=key, reverse=paging.direction == "desc")
        return ApiResponse(200, envelope([e.to_api() for e in entries], paging, paging.order_field))

    # ------------------------------------------------------------------ lists
    def _list_details(self, route: Route, principal: Principal, query: dict, body: bytes) -> ApiResponse:
        lst = self._list(principal, route.params["list_id"])
        return ApiResponse(200, {
            "ConfirmedOptIn": lst.confirmed_opt_in,
            "Title": lst.name,
            "UnsubscribePage": lst.unsubscribe_page,
            "ListID": lst.list_id,
            "ConfirmationSuccessPage": lst.confirmation_success_page,
            "UnsubscribeSetting": lst.unsubscribe_setting,
        })

    def _list_subscribers(self, route: Route, principal: Principal, query: dict, body: bytes) -> ApiResponse:
        lst = self._list(principal, route.params["list_id"])
        paging = parse_paging(query, default_direction="asc", order_fields=("email", "name", "date"),
                              default_field="email")
        since: datetime | None = parse_date(_first(query, "date") or "")
        rows = self.store.subscribers_in_state(lst.list_id, _STATE_OF_PATH[route.params["state"]], since)
        sort_key: dict[str, Callable[[Any], Any]] = {
            "email": lambda r: r.email.lower(), "name": lambda r: r.name.lower(), "date": lambda r: r.date}
        rows.sort(key=sort_key[paging.order_field], reverse=paging.direction == "desc")
        tracking = (_first(query, "includetrackingpreference") or "").lower() == "true"
        return ApiResponse(200, envelope([r.to_api(tracking) for r in rows], paging, paging.order_field))

    # ------------------------------------------------------------------ subscribers
    def _subscriber(self, route: Route, principal: Principal, query: dict, body: bytes) -> ApiResponse:
        lst = self._list(principal, route.params["list_id"])
        email = self._email(_first(query, "email"))
        rec = self.store.record(lst.list_id, email)
        if rec is None:
            raise ApiError(203)
        tracking = (_first(query, "includetrackingpreference") or "").lower() == "true"
        return ApiResponse(200, rec.to_api(tracking))

    def _history(self, route: Route, principal: Principal, query: dict, body: bytes) -> ApiResponse:
        lst = self._list(principal, route.params["list_id"])
        email = self._email(_first(query, "email"))
        if self.store.record(lst.list_id, email) is None:
            raise ApiError(203)
        return ApiResponse(200, self.store.history(lst.list_id, email))

    def _add(self, route: Route, principal: Principal, query: dict, body: bytes) -> ApiResponse:
        lst = self._list(principal, route.params["list_id"])
        data = self._json_body(body)
        email = self._email(data.get("EmailAddress"))
        consent = data.get("ConsentToTrack")
        if consent is None or (isinstance(consent, str) and not consent.strip()):
            raise ApiError(214)
        canonical = {v.lower(): v for v in CONSENT_VALUES}.get(str(consent).strip().lower())
        if canonical is None:
            raise ApiError(215)
        name = data.get("Name")
        fields_ = data.get("CustomFields") or []
        added = self.store.add_subscriber(
            lst.list_id, email,
            name=str(name) if name is not None else None,
            custom_fields=fields_ if isinstance(fields_, list) else [],
            resubscribe=bool(data.get("Resubscribe")),
            consent_to_track=canonical,
        )
        return ApiResponse(201, added)

    def _unsubscribe(self, route: Route, principal: Principal, query: dict, body: bytes) -> ApiResponse:
        lst = self._list(principal, route.params["list_id"])
        email = self._email(self._json_body(body).get("EmailAddress"))
        self.store.unsubscribe(lst.list_id, email)
        return ApiResponse(200)

    def _delete(self, route: Route, principal: Principal, query: dict, body: bytes) -> ApiResponse:
        lst = self._list(principal, route.params["list_id"])
        email = self._email(_first(query, "email"))
        self.store.delete(lst.list_id, email)
        return ApiResponse(200)
