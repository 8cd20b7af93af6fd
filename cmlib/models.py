"""Typed results parsed from the API's real shapes (see ../shared/cm-fixtures).

Every model keeps the original dict in ``raw`` so fields we do not model yet survive, and
states stay open strings: Campaign Monitor has shown ``Spam``/``Suppressed`` in the past and
may add more, and an unknown state must be shown as it is rather than crash a page.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from .states import SUBSCRIBED_STATES as SUBSCRIBED_STATES  # re-exported: callers import states from models
from .states import SubscriberState

T = TypeVar("T")

ACTIVE = SubscriberState.ACTIVE
UNCONFIRMED = SubscriberState.UNCONFIRMED
UNSUBSCRIBED = SubscriberState.UNSUBSCRIBED
BOUNCED = SubscriberState.BOUNCED
DELETED = SubscriberState.DELETED
KNOWN_STATES = tuple(SubscriberState)

ALL_CLIENT_LISTS = "AllClientLists"
ONLY_THIS_LIST = "OnlyThisList"

_DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


def parse_date(value: Any) -> datetime | None:
    """CM dates are ``YYYY-MM-DD HH:MM:SS``, sometimes without seconds, never with a zone."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    if "." in text:  # fractional seconds seen in some exports
        text = text.split(".", 1)[0]
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def format_date(value: datetime | None) -> str:
    """The API's own format, used by the sandbox and the CLI's JSON."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _s(d: dict, key: str, default: str = "") -> str:
    v = d.get(key, default)
    return default if v is None else str(v)


@dataclass(frozen=True)
class ClientRef:
    client_id: str
    name: str
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, d: dict) -> ClientRef:
        return cls(client_id=_s(d, "ClientID"), name=_s(d, "Name"), raw=d)


@dataclass(frozen=True)
class ClientDetails:
    client_id: str
    company_name: str
    country: str
    time_zone: str
    contact_name: str = ""
    email_address: str = ""
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, d: dict) -> ClientDetails:
        b = d.get("BasicDetails") or {}
        # Never keep the client's own ApiKey that this endpoint echoes back.
        safe = {k: v for k, v in d.items() if k != "ApiKey"}
        return cls(
            client_id=_s(b, "ClientID"),
            company_name=_s(b, "CompanyName"),
            country=_s(b, "Country"),
            time_zone=_s(b, "TimeZone"),
            contact_name=_s(b, "ContactName"),
            email_address=_s(b, "EmailAddress"),
            raw=safe,
        )


@dataclass(frozen=True)
class ListRef:
    list_id: str
    name: str
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, d: dict) -> ListRef:
        return cls(list_id=_s(d, "ListID"), name=_s(d, "Name"), raw=d)


@dataclass(frozen=True)
class ListDetail:
    list_id: str
    title: str
    confirmed_opt_in: bool
    unsubscribe_setting: str
    unsubscribe_page: str = ""
    confirmation_success_page: str = ""
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def unsubscribes_from_all(self) -> bool:
        """True when unsubscribing here unsubscribes from every list of the client."""
        return self.unsubscribe_setting == ALL_CLIENT_LISTS

    @classmethod
    def from_api(cls, d: dict) -> ListDetail:
        return cls(
            list_id=_s(d, "ListID"),
            title=_s(d, "Title"),
            confirmed_opt_in=bool(d.get("ConfirmedOptIn", False)),
            unsubscribe_setting=_s(d, "UnsubscribeSetting", ONLY_THIS_LIST) or ONLY_THIS_LIST,
            unsubscribe_page=_s(d, "UnsubscribePage"),
            confirmation_success_page=_s(d, "ConfirmationSuccessPage"),
            raw=d,
        )


@dataclass(frozen=True)
class ListMembership:
    """One row of ``listsforemail``: a list the address is on, and its state there."""

    list_id: str
    list_name: str
    state: str
    date_added: datetime | None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, d: dict) -> ListMembership:
        return cls(
            list_id=_s(d, "ListID"),
            list_name=_s(d, "ListName"),
            state=_s(d, "SubscriberState"),
            date_added=parse_date(d.get("DateSubscriberAdded")),
            raw=d,
        )


@dataclass(frozen=True)
class CustomField:
    key: str
    value: str


@dataclass(frozen=True)
class SubscriberDetail:
    email: str
    name: str
    state: str
    state_changed: datetime | None  # API "Date": when the state last changed
    joined: datetime | None  # API "ListJoinedDate": first join
    custom_fields: tuple[CustomField, ...] = ()
    reads_email_with: str = ""
    consent_to_track: str | None = None  # only with includetrackingpreference=true
    mobile_number: str | None = None
    consent_to_send_sms: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, d: dict) -> SubscriberDetail:
        fields_ = tuple(
            CustomField(key=_s(f, "Key"), value=_s(f, "Value"))
            for f in (d.get("CustomFields") or [])
            if isinstance(f, dict)
        )
        return cls(
            email=_s(d, "EmailAddress"),
            name=_s(d, "Name"),
            state=_s(d, "State"),
            state_changed=parse_date(d.get("Date")),
            joined=parse_date(d.get("ListJoinedDate")),
            custom_fields=fields_,
            reads_email_with=_s(d, "ReadsEmailWith"),
            consent_to_track=d.get("ConsentToTrack"),
            mobile_number=d.get("MobileNumber"),
            consent_to_send_sms=d.get("ConsentToSendSms"),
            raw=d,
        )


@dataclass(frozen=True)
class HistoryAction:
    event: str  # Open, Click, Unsubscribe, Bounce ... (open string)
    date: datetime | None
    ip_address: str = ""
    detail: str = ""  # the URL for a Click

    @classmethod
    def from_api(cls, d: dict) -> HistoryAction:
        return cls(
            event=_s(d, "Event"),
            date=parse_date(d.get("Date")),
            ip_address=_s(d, "IPAddress"),
            detail=_s(d, "Detail"),
        )


@dataclass(frozen=True)
class HistoryItem:
    """One email sent to the subscriber from one list (``ID`` is the CampaignID for campaigns)."""

    id: str
    type: str
    name: str
    actions: tuple[HistoryAction, ...] = ()
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def opens(self) -> int:
        return sum(1 for a in self.actions if a.event.lower() == "open")

    @property
    def clicks(self) -> int:
        return sum(1 for a in self.actions if a.event.lower() == "click")

    @classmethod
    def from_api(cls, d: dict) -> HistoryItem:
        return cls(
            id=_s(d, "ID"),
            type=_s(d, "Type"),
            name=_s(d, "Name"),
            actions=tuple(HistoryAction.from_api(a) for a in (d.get("Actions") or []) if isinstance(a, dict)),
            raw=d,
        )


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    name: str
    subject: str
    sent_date: datetime | None
    total_recipients: int | None = None
    web_version_url: str = ""
    web_version_text_url: str = ""
    from_name: str = ""
    from_email: str = ""
    tags: tuple[str, ...] = ()
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, d: dict) -> Campaign:
        tr = d.get("TotalRecipients")
        return cls(
            campaign_id=_s(d, "CampaignID"),
            name=_s(d, "Name"),
            subject=_s(d, "Subject"),
            sent_date=parse_date(d.get("SentDate")),
            total_recipients=int(tr) if isinstance(tr, (int, float)) else None,
            web_version_url=_s(d, "WebVersionURL"),
            web_version_text_url=_s(d, "WebVersionTextURL"),
            from_name=_s(d, "FromName"),
            from_email=_s(d, "FromEmail"),
            tags=tuple(str(t) for t in (d.get("Tags") or [])),
            raw=d,
        )


@dataclass(frozen=True)
class SuppressedAddress:
    email: str
    reason: str
    date: datetime | None
    state: str = "Suppressed"

    @classmethod
    def from_api(cls, d: dict) -> SuppressedAddress:
        return cls(
            email=_s(d, "EmailAddress"),
            reason=_s(d, "SuppressionReason"),
            date=parse_date(d.get("Date")),
            state=_s(d, "State", "Suppressed"),
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    """The paged envelope. ``number_of_pages`` is 0 for an empty result on page 1."""

    results: tuple[T, ...]
    page_number: int
    page_size: int
    records_on_this_page: int
    total_number_of_records: int
    number_of_pages: int
    results_ordered_by: str = ""
    order_direction: str = ""

    @property
    def has_more(self) -> bool:
        return self.page_number < self.number_of_pages

    @classmethod
    def from_api(cls, d: dict, item: Any) -> Page:
        def _i(k: str) -> int:
            try:
                return int(d.get(k) or 0)
            except (TypeError, ValueError):
                return 0

        return cls(
            results=tuple(item(r) for r in (d.get("Results") or []) if isinstance(r, dict)),
            page_number=_i("PageNumber"),
            page_size=_i("PageSize"),
            records_on_this_page=_i("RecordsOnThisPage"),
            total_number_of_records=_i("TotalNumberOfRecords"),
            number_of_pages=_i("NumberOfPages"),
            results_ordered_by=_s(d, "ResultsOrderedBy"),
            order_direction=_s(d, "OrderDirection"),
        )


def parse_list(data: Any, item: Any) -> list:
    """Parse a JSON array of objects, ignoring anything that is not an object."""
    if not isinstance(data, list):
        return []
    return [item(d) for d in data if isinstance(d, dict)]

