"""The sandbox's fixed, documented facts: demo keys, client IDs and demo customers.

These values are the same for every seed and every run, so the README, the tests, the
Settings page and a support lead trying the app can all name them. The keys are not secrets:
they only open the local emulator, which is why the CLI may print them.
"""
from __future__ import annotations

from collections.abc import Iterable

# API keys accepted by the sandbox. Account-level sees both clients; client-level only MAIN.
ACCOUNT_API_KEY = "sandbox-account-key-0b7c1f5e9d2a4c61"
CLIENT_API_KEY = "sandbox-client-key-6e3a9c0d4b8147f2"
# What GET /clients/{id}.json echoes in "ApiKey": a dummy, so a real key never travels back.
ECHOED_API_KEY = "0000000000000000sandbox0dummy0key000000000000000"

MAIN_CLIENT_ID = "c1e27d5b0a3f4e6c9b8d7a6f5e4d3c21"
MAIN_CLIENT_NAME = "Acme Books"
OTHER_CLIENT_ID = "0f9e8d7c6b5a49382716a5b4c3d2e1f0"
OTHER_CLIENT_NAME = "Globex Events"

# A list name built to break naive rendering: raw HTML, markdown bold and Streamlit colour syntax.
VIP_LIST_NAME = "<img src=x onerror=alert(1)> **VIP** :red[x]"


class DemoCase(list):
    """The addresses of one demo case (a plain ``list`` of str) plus a ``description``.

    A list subclass so ``DEMO_CUSTOMERS["three_addresses"]`` can be passed anywhere a list of
    addresses is expected while the README and tests can still read what the case shows.
    """

    def __init__(self, addresses: Iterable[str], description: str) -> None:
        super().__init__(addresses)
        self.description = description

    def __repr__(self) -> str:
        return f"DemoCase({list(self)!r}, description={self.description!r})"


DEMO_CUSTOMERS: dict[str, DemoCase] = {
    "no_list": DemoCase(
        ["nobody@example.com"],
        "On no list of the main client: the lookup offers to add them.",
    ),
    "never_mailed": DemoCase(
        ["fresh@example.com"],
        "Joined a day ago: Active on Newsletter, Unconfirmed on Product updates (confirmed "
        "opt-in); no campaign received yet, so Lists only.",
    ),
    "with_campaigns": DemoCase(
        ["anna@example.com"],
        "Active on Newsletter, Offers and Webinars for over a year; many campaigns with opens "
        "and clicks; one campaign went to Newsletter+Offers and shows in both histories; "
        "has custom fields (City, Interests x2, Loyalty points).",
    ),
    "three_addresses": DemoCase(
        ["ivan@example.com", "ivan.work@example.org", "ivan.old@example.com"],
        "One person, three addresses on four lists each: ivan@ Active everywhere; ivan.work@ "
        "Unsubscribed from Newsletter (Unsubscribe action in a campaign) and Events Moscow, "
        "Active on Webinars and Product updates; ivan.old@ Bounced (Bounce action in a "
        "campaign) on three lists and Deleted from Product updates.",
    ),
    "plus_sign": DemoCase(
        ["maria+news@example.com"],
        "A '+' in the address: Active on Newsletter and Offers with campaigns. Must travel "
        "URL-encoded (%2B); a raw '+' arrives as a space and gets Code 1.",
    ),
    "all_lists_unsubscribed": DemoCase(
        ["leaver@example.com"],
        "Unsubscribed via a campaign sent to Offers (UnsubscribeSetting AllClientLists), so "
        "Unsubscribed from Newsletter, Offers and Webinars at the same moment; the "
        "Unsubscribe action is in that campaign's history.",
    ),
    "html_list_name": DemoCase(
        ["vip@example.com"],
        f"Active on the list named exactly {VIP_LIST_NAME!r} (and Newsletter); a VIP "
        "campaign subject also holds HTML/markdown characters.",
    ),
    "suppressed": DemoCase(
        ["suppressed@example.com"],
        "On the client's suppression list and on no list: an add answers 204 unless "
        "Resubscribe is true (then it is removed from suppression and added).",
    ),
    "mixed_case": DemoCase(
        ["Olga.Case@Example.COM"],
        "Stored with capitals; any casing finds it (lookups are case-insensitive).",
    ),
    "other_client_only": DemoCase(
        ["globex.fan@example.org"],
        "Only on the other client's lists: on no list of the main client; visible with the "
        "account key under the other client.",
    ),
}


def all_demo_addresses() -> list[str]:
    """Every demo address, in case order."""
    return [a for case in DEMO_CUSTOMERS.values() for a in case]
