"""Every Campaign Monitor call the app makes, typed: what it sends and what its answer becomes.

A mixin over the transport (:class:`cmlib.client.CampaignMonitor`), which owns how a call is
made (limits, retries, breaker, cache); here is only which path, which parameters, which model.
Writes forget every cached answer about their address, so the next read shows the change.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .models import (
    Campaign,
    ClientDetails,
    ClientRef,
    HistoryItem,
    ListDetail,
    ListMembership,
    ListRef,
    Page,
    SubscriberDetail,
    SuppressedAddress,
    parse_list,
)

CONSENT_VALUES = ("Yes", "No", "Unchanged")


class Endpoints:
    """The API's calls over :meth:`request`; :class:`cmlib.client.CampaignMonitor` provides it."""

    def request(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
                fresh: bool = False, email: str | None = None, list_id: str | None = None) -> Any:
        raise NotImplementedError  # the transport's

    def invalidate_email(self, email: str) -> int:
        raise NotImplementedError  # the transport's

    # ------------------------------------------------------------------ reads
    def clients(self) -> list[ClientRef]:
        return parse_list(self.request("GET", "/clients.json"), ClientRef.from_api)

    def client_details(self, client_id: str, *, fresh: bool = False) -> ClientDetails:
        data = self.request("GET", f"/clients/{client_id}.json", fresh=fresh)
        return ClientDetails.from_api(data if isinstance(data, dict) else {})

    def lists(self, client_id: str, *, fresh: bool = False) -> list[ListRef]:
        return parse_list(self.request("GET", f"/clients/{client_id}/lists.json", fresh=fresh), ListRef.from_api)

    def list_details(self, list_id: str, *, fresh: bool = False) -> ListDetail:
        data = self.request("GET", f"/lists/{list_id}.json", fresh=fresh, list_id=list_id)
        return ListDetail.from_api(data if isinstance(data, dict) else {})

    def lists_for_email(self, client_id: str, email: str, *, fresh: bool = False) -> list[ListMembership]:
        data = self.request("GET", f"/clients/{client_id}/listsforemail.json", params={"email": email},
                            fresh=fresh, email=email)
        return parse_list(data, ListMembership.from_api)

    def subscriber(self, list_id: str, email: str, *, fresh: bool = False) -> SubscriberDetail:
        data = self.request("GET", f"/subscribers/{list_id}.json",
                            params={"email": email, "includetrackingpreference": "true"},
                            fresh=fresh, email=email, list_id=list_id)
        return SubscriberDetail.from_api(data if isinstance(data, dict) else {})

    def history(self, list_id: str, email: str, *, fresh: bool = False) -> list[HistoryItem]:
        data = self.request("GET", f"/subscribers/{list_id}/history.json", params={"email": email},
                            fresh=fresh, email=email, list_id=list_id)
        return parse_list(data, HistoryItem.from_api)

    def campaigns(self, client_id: str, *, page: int = 1, page_size: int = 1000,
                  order_direction: str = "desc", fresh: bool = False) -> Page[Campaign]:
        data = self.request("GET", f"/clients/{client_id}/campaigns.json",
                            params={"page": page, "pagesize": page_size, "orderdirection": order_direction},
                            fresh=fresh)
        return Page.from_api(data if isinstance(data, dict) else {}, Campaign.from_api)

    def iter_campaigns(self, client_id: str, *, page_size: int = 1000, max_pages: int = 50,
                       fresh: bool = False) -> Iterator[Campaign]:
        """Sent campaigns, newest first, across pages."""
        page = 1
        while page <= max_pages:
            p = self.campaigns(client_id, page=page, page_size=page_size, fresh=fresh)
            yield from p.results
            if not p.has_more:
                return
            page += 1

    def suppression_list(self, client_id: str, *, page: int = 1, page_size: int = 1000,
                         fresh: bool = False) -> Page[SuppressedAddress]:
        data = self.request("GET", f"/clients/{client_id}/suppressionlist.json",
                            params={"page": page, "pagesize": page_size}, fresh=fresh)
        return Page.from_api(data if isinstance(data, dict) else {}, SuppressedAddress.from_api)

    def is_suppressed(self, client_id: str, email: str, *, max_pages: int = 20,
                      fresh: bool = False) -> SuppressedAddress | None:
        target = email.strip().lower()
        page = 1
        while page <= max_pages:
            p = self.suppression_list(client_id, page=page, fresh=fresh)
            for s in p.results:
                if s.email.lower() == target:
                    return s
            if not p.has_more:
                return None
            page += 1
        return None

    # ------------------------------------------------------------------ writes
    def add_subscriber(
        self,
        list_id: str,
        email: str,
        *,
        name: str = "",
        custom_fields: list[dict] | None = None,
        resubscribe: bool = False,
        consent_to_track: str = "Unchanged",
        restart_autoresponders: bool = False,
    ) -> str:
        if consent_to_track not in CONSENT_VALUES:
            raise ValueError(f"consent_to_track must be one of {CONSENT_VALUES}")
        body: dict[str, Any] = {
            "EmailAddress": email,
            "CustomFields": custom_fields or [],
            "Resubscribe": bool(resubscribe),
            "RestartSubscriptionBasedAutoresponders": bool(restart_autoresponders),
            "ConsentToTrack": consent_to_track,
        }
        if name:  # an empty Name could wipe the stored one on an update
            body["Name"] = name
        data = self.request("POST", f"/subscribers/{list_id}.json", body=body, email=email, list_id=list_id)
        self.invalidate_email(email)
        return data if isinstance(data, str) else email

    def unsubscribe(self, list_id: str, email: str) -> None:
        self.request("POST", f"/subscribers/{list_id}/unsubscribe.json", body={"EmailAddress": email},
                     email=email, list_id=list_id)
        self.invalidate_email(email)

    def delete_subscriber(self, list_id: str, email: str) -> None:
        self.request("DELETE", f"/subscribers/{list_id}.json", params={"email": email},
                     email=email, list_id=list_id)
        self.invalidate_email(email)
