"""The sandbox's data model: typed records for what Campaign Monitor keeps.

Split so the generator (seed.py) and the rules (store.py) share one vocabulary. Campaigns,
history actions and lists never change after seeding (the API we emulate has no write that
alters them), so they are frozen and shared between stores; subscriber records and the
suppression list are the only mutable state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from ..models import ACTIVE, ALL_CLIENT_LISTS, BOUNCED, DELETED, ONLY_THIS_LIST, UNCONFIRMED, UNSUBSCRIBED, format_date

__all__ = [
    "ACTIVE", "ALL_CLIENT_LISTS", "BOUNCED", "DELETED", "ONLY_THIS_LIST", "UNCONFIRMED", "UNSUBSCRIBED",
    "Action", "ClientInfo", "MailingList", "Membership", "SentCampaign", "SubscriberRecord",
    "SuppressionEntry", "World", "email_key", "format_date",
]


def email_key(email: str) -> str:
    """Campaign Monitor matches addresses case-insensitively while storing them as given."""
    return email.strip().lower()


@dataclass(frozen=True)
class ClientInfo:
    client_id: str
    name: str
    contact_name: str
    email_address: str
    country: str
    time_zone: str
    username: str


@dataclass(frozen=True)
class MailingList:
    list_id: str
    client_id: str
    name: str
    confirmed_opt_in: bool
    unsubscribe_setting: str = ONLY_THIS_LIST
    unsubscribe_page: str = ""
    confirmation_success_page: str = ""

    @property
    def unsubscribes_from_all(self) -> bool:
        return self.unsubscribe_setting == ALL_CLIENT_LISTS


@dataclass
class SubscriberRecord:
    """One (list, address) row. ``date`` is when ``state`` last changed; ``joined`` the first join."""

    list_id: str
    email: str
    name: str
    state: str
    date: datetime
    joined: datetime
    custom_fields: list[tuple[str, str]] = field(default_factory=list)
    reads_email_with: str = ""
    consent_to_track: str = "Yes"

    def copy(self) -> SubscriberRecord:
        """A copy that shares nothing mutable (every Store copies ~2,500 of these: kept cheap)."""
        new = object.__new__(SubscriberRecord)
        new.__dict__.update(self.__dict__)
        new.custom_fields = list(self.custom_fields)
        return new

    def to_api(self, include_tracking: bool) -> dict[str, Any]:
        """The subscriber-details shape of the fixtures (ConsentToTrack only when asked for)."""
        d: dict[str, Any] = {
            "EmailAddress": self.email,
            "Name": self.name,
            "Date": format_date(self.date),
            "ListJoinedDate": format_date(self.joined),
            "State": self.state,
            "CustomFields": [{"Key": k, "Value": v} for k, v in self.custom_fields],
            "ReadsEmailWith": self.reads_email_with,
        }
        if include_tracking:
            d["ConsentToTrack"] = self.consent_to_track
        return d


@dataclass(frozen=True)
class Action:
    """One tracked event in a history item: Open, Click (Detail = URL), Unsubscribe, Bounce."""

    event: str
    date: datetime
    ip_address: str = ""
    detail: str = ""

    def to_api(self) -> dict[str, Any]:
        return {"Event": self.event, "Date": format_date(self.date), "IPAddress": self.ip_address,
                "Detail": self.detail}


@dataclass(frozen=True)
class SentCampaign:
    campaign_id: str
    client_id: str
    name: str
    subject: str
    sent_date: datetime
    list_ids: tuple[str, ...]
    web_version_url: str
    from_name: str
    from_email: str
    reply_to: str
    total_recipients: int
    tags: tuple[str, ...] = ()

    def to_api(self) -> dict[str, Any]:
        """The shape of one ``campaigns.json`` result (key order as in the fixture)."""
        d: dict[str, Any] = {
            "WebVersionURL": self.web_version_url,
            "WebVersionTextURL": self.web_version_url + "/t",
            "CampaignID": self.campaign_id,
            "Subject": self.subject,
            "Name": self.name,
            "FromName": self.from_name,
            "FromEmail": self.from_email,
            "ReplyTo": self.reply_to,
            "SentDate": format_date(self.sent_date),
            "TotalRecipients": self.total_recipients,
        }
        if self.tags:
            d["Tags"] = list(self.tags)
        return d


@dataclass(frozen=True)
class SuppressionEntry:
    email: str
    reason: str
    date: datetime

    def to_api(self) -> dict[str, Any]:
        return {"SuppressionReason": self.reason, "EmailAddress": self.email,
                "Date": format_date(self.date), "State": "Suppressed"}


class Membership(NamedTuple):
    """What ``listsforemail`` says about one list (a tuple, so tests can unpack it)."""

    list_id: str
    list_name: str
    state: str
    date_added: datetime


@dataclass(frozen=True)
class World:
    """A generated account: the immutable template every Store starts from.

    ``sent_via`` maps (list_id, email_key) to the campaigns that reached the address through
    that list, newest first; ``actions`` maps (campaign_id, email_key) to its actions, newest
    first. A campaign sent to two lists the address is on is in both lists' ``sent_via`` and
    has one ``actions`` entry, so both histories show the same actions.
    """

    seed: int
    now: datetime
    account_api_key: str
    client_api_keys: dict[str, str]  # key -> client_id
    clients: tuple[ClientInfo, ...]
    lists: tuple[MailingList, ...]
    records: tuple[SubscriberRecord, ...]
    campaigns: tuple[SentCampaign, ...]
    sent_via: dict[tuple[str, str], tuple[str, ...]]
    actions: dict[tuple[str, str], tuple[Action, ...]]
    suppression: dict[str, tuple[SuppressionEntry, ...]]  # client_id -> entries
    custom_field_names: dict[str, tuple[str, ...]] = field(default_factory=dict)
