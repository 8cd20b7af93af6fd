"""Is the connection right, and is it healthy? The Settings page's "Test connection" and health panel.

Kept pure (no Streamlit) so the messages can be unit-tested against canned API answers and the
CLI can print the same diagnosis. Every message names what is wrong in the admin's terms
(wrong key, wrong client ID, no network) and never contains the key itself: the only thing a
report may say about the key is its last four characters.

Nothing here raises for bad input: a URL the key must not go to (see :mod:`cmlib.urls`) is a
``BAD_URL`` report before any connection is made, and an unexpected exception from the HTTP
stack becomes an ``UNEXPECTED`` report naming its type -- the Settings page shows a sentence,
never a traceback.
"""
from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .cache import DEFAULT_EXPIRY
from .client import CampaignMonitor, ClientOptions
from .errors import (
    AuthenticationError,
    CMError,
    ConfigurationError,
    RateLimitedError,
    ServerError,
    TimeoutError,
    TransportError,
    UnexpectedResponseError,
)
from .models import ClientDetails, ClientRef
from .retry import RetryPolicy
from .urls import ApiUrlError, Resolver, check_api_url, display_url, system_resolver

log = logging.getLogger("cmlib.diagnostics")

DEFAULT_TIMEOUT = 8.0
CHECK_RETRY = RetryPolicy(max_attempts=2, base_delay=0.3, max_delay=2.0, max_total_wait=4.0)


class Problem(enum.StrEnum):
    """What kind of thing is wrong (``NONE`` when nothing is)."""

    NONE = "ok"
    MISSING_KEY = "missing_key"
    MISSING_CLIENT_ID = "missing_client_id"  # account key, no client chosen yet
    BAD_URL = "bad_url"
    KEY_NOT_FOR_URL = "key_not_for_url"  # the saved key, asked to go to another URL: refused
    BAD_AUTH_HEADER = "bad_auth_header"  # Code 50
    INVALID_KEY = "invalid_key"  # Code 100
    CLIENT_NOT_FOUND = "client_not_found"  # Code 102
    OAUTH = "oauth"  # Codes 60, 120-122
    AUTH_OTHER = "auth_other"
    TIMEOUT = "timeout"
    NETWORK = "network"
    RATE_LIMITED = "rate_limited"
    SERVER = "server"
    UNEXPECTED = "unexpected"


@dataclass(frozen=True)
class ConnectionReport:
    ok: bool
    problem: Problem
    message: str
    client_id: str = ""  # the client that was checked (the only one the key sees, when none was given)
    client: ClientDetails | None = None
    list_count: int | None = None
    clients: tuple[ClientRef, ...] = ()  # the clients the key can list ((): refused, or not asked)
    latency_ms: float | None = None
    error_code: int | None = None

    @property
    def is_account_key(self) -> bool:
        """Several clients visible: certainly an account key (a client key sees at most its own)."""
        return len(self.clients) > 1


def _host(api_url: str) -> str:
    """host[:port] of a URL for a message: never its ``user:password@`` part, never 5,000 characters."""
    try:
        parts = urlsplit(api_url)
        host = parts.netloc.rsplit("@", 1)[-1]
    except ValueError:
        host = ""
    return display_url(host or api_url, 80)


def describe_error(err: CMError, *, client_id: str = "", api_url: str = "") -> tuple[Problem, str]:
    """The problem kind and an admin-facing sentence for an error from a credential check."""
    where = f" at {_host(api_url)}" if api_url else ""
    if isinstance(err, AuthenticationError):
        code = err.code
        if code == 100:
            return Problem.INVALID_KEY, (
                "Invalid API key (Code 100): Campaign Monitor does not recognise this key. Copy it again "
                "from Account settings → API keys; a key that was regenerated or deleted stops working.")
        if code == 50:
            return Problem.BAD_AUTH_HEADER, (
                "Bad authorisation header (Code 50): the API did not receive a usable key. Check that the "
                "key was pasted whole, without spaces or line breaks.")
        if code == 102:
            return Problem.CLIENT_NOT_FOUND, (
                f"Client ID not found or not yours (Code 102): the key is valid, but client {client_id!r} does "
                "not exist or this key may not access it. A client-level key only sees its own client.")
        if code in (60, 120, 121, 122):
            return Problem.OAUTH, f"OAuth problem ({err.reason}). Use an API key instead of an OAuth token."
        return Problem.AUTH_OTHER, f"The API refused the credentials ({err.reason})."
    if isinstance(err, TimeoutError):
        return Problem.TIMEOUT, (
            f"Timed out{where} ({err.message}). The API may be slow or a firewall may be dropping the "
            "connection; try again, or check the API URL.")
    if isinstance(err, TransportError):
        return Problem.NETWORK, (
            f"Cannot reach the API{where} ({err.message}). Check the network, proxy settings and the API URL.")
    if isinstance(err, RateLimitedError):
        wait = f" for about {err.reset_seconds:g} s" if err.reset_seconds is not None else ""
        return Problem.RATE_LIMITED, f"Rate limited by the API (HTTP 429); wait{wait} and try again."
    if isinstance(err, ServerError):
        return Problem.SERVER, f"Campaign Monitor had a server error ({err.reason}); try again later."
    if isinstance(err, UnexpectedResponseError):
        return Problem.UNEXPECTED, (
            f"The answer{where} was not Campaign Monitor JSON ({err.message}). Check the API URL "
            "(it should end in /api/v3.3).")
    if isinstance(err, ApiUrlError):
        return Problem.BAD_URL, err.message
    if isinstance(err, ConfigurationError):
        return Problem.MISSING_KEY, err.message
    return Problem.UNEXPECTED, f"The API answered with an error ({err.reason})."


def unexpected_failure(exc: BaseException, api_url: str = "") -> tuple[Problem, str]:
    """A sentence for an exception the HTTP stack should not have raised (logged with its type only)."""
    where = f" at {_host(api_url)}" if api_url else ""
    log.warning("unexpected %s while checking the API%s", type(exc).__name__, where)
    return Problem.UNEXPECTED, (
        f"The check of the API{where} failed unexpectedly ({type(exc).__name__}). Check the API URL "
        "(expected e.g. https://api.createsend.com/api/v3.3) and try again.")


def make_check_client(api_key: str, api_url: str, timeout: float = DEFAULT_TIMEOUT) -> CampaignMonitor:
    """A throwaway client: no cache (a check must reach the API), short timeouts, one retry."""
    opts = ClientOptions(connect_timeout=min(timeout, 5.0), read_timeout=timeout, retry=CHECK_RETRY,
                         rate=None, max_in_flight=2, pool_size=2)
    return CampaignMonitor(api_key, api_url, options=opts, cache=None)


def check_connection(
    api_key: str,
    client_id: str,
    api_url: str,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    client: CampaignMonitor | None = None,
    resolve: Resolver | None = system_resolver,
) -> ConnectionReport:
    """Call the API the way the app will and say precisely what, if anything, is wrong.

    The URL is checked first (:func:`cmlib.urls.check_api_url`, including what its host name
    resolves to): a refused URL is a ``BAD_URL`` report and nothing is sent anywhere.

    Order matters: with a client ID, ``client_details`` is the definitive check (100 = bad
    key, 102 = bad client); ``/clients.json`` is then asked only to learn whether the key is
    account-level, since a client-level key may be refused there. Without a client ID,
    ``/clients.json`` both validates the key and lists the clients to choose from.
    """
    api_key = (api_key or "").strip()
    client_id = (client_id or "").strip()
    api_url = (api_url or "").strip()
    url_check = check_api_url(api_url, resolve=resolve)
    if not url_check.ok:
        return ConnectionReport(False, Problem.BAD_URL, url_check.message)
    if not api_key:
        return ConnectionReport(False, Problem.MISSING_KEY, "Enter an API key first.")
    try:
        cm = client or make_check_client(api_key, api_url, timeout)
    except CMError as err:
        problem, message = describe_error(err, api_url=api_url)
        return ConnectionReport(False, problem, message)
    except Exception as exc:  # a check reports, it never raises
        return ConnectionReport(False, *unexpected_failure(exc, api_url))
    try:
        return _run_checks(cm, client_id, api_url)
    except Exception as exc:  # e.g. urllib3's LocationParseError escaping requests
        return ConnectionReport(False, *unexpected_failure(exc, api_url))
    finally:
        if client is None:
            cm.close()



def _clients_or_none(cm: CampaignMonitor) -> tuple[ClientRef, ...] | None:
    """The clients an account key sees; None when the key cannot list clients (client-level key)."""
    try:
        return tuple(c for c in cm.clients() if c.client_id)
    except AuthenticationError:
        return None


def _run_checks(cm: CampaignMonitor, client_id: str, api_url: str) -> ConnectionReport:
    clients: tuple[ClientRef, ...] = ()
    if not client_id:
        try:
            clients = tuple(c for c in cm.clients() if c.client_id)
        except CMError as err:
            problem, message = describe_error(err, api_url=api_url)
            if problem in (Problem.INVALID_KEY, Problem.BAD_AUTH_HEADER, Problem.AUTH_OTHER):
                message += (" (A client-level key may not be allowed to list clients: enter its client ID "
                            "and test again.)")
            return ConnectionReport(False, problem, message, error_code=err.code)
        if not clients:
            return ConnectionReport(False, Problem.MISSING_CLIENT_ID,
                                    "The key is valid but sees no clients. Enter the client ID.")
        if len(clients) > 1:
            return ConnectionReport(
                False, Problem.MISSING_CLIENT_ID,
                f"The key is valid: it is an account-level key that sees {len(clients)} clients. Choose one.",
                clients=clients)
        client_id = clients[0].client_id  # the key sees exactly one client: that is the one

    started = time.perf_counter()
    try:
        details = cm.client_details(client_id)
    except CMError as err:
        problem, message = describe_error(err, client_id=client_id, api_url=api_url)
        if problem is Problem.CLIENT_NOT_FOUND and not clients:
            try:
                clients = _clients_or_none(cm) or ()
            except CMError:
                clients = ()
            if clients:
                n = len(clients)
                message += (f" This key sees {n} clients: choose one of them." if n > 1
                            else " This key sees one client: choose it.")
        return ConnectionReport(False, problem, message, client_id=client_id, clients=clients, error_code=err.code)
    latency = cm.last_call.latency_ms if cm.last_call else (time.perf_counter() - started) * 1000

    try:
        lists = cm.lists(client_id)
    except CMError as err:
        problem, message = describe_error(err, client_id=client_id, api_url=api_url)
        return ConnectionReport(False, problem, f"The client was found but its lists could not be read: {message}",
                                client_id=client_id, client=details, clients=clients, latency_ms=latency,
                                error_code=err.code)
    if not clients:
        try:
            clients = _clients_or_none(cm) or ()
        except CMError:
            clients = ()

    name = details.company_name or client_id
    plural = "s" if len(lists) != 1 else ""
    # the client's zone is named as such: the dashboard may show times in another one (the browser's)
    bits = [b for b in (details.country, f"client time zone {details.time_zone}" if details.time_zone else "") if b]
    extra = f" ({', '.join(bits)})" if bits else ""
    message = f"Connected to {name}{extra}: {len(lists)} list{plural}."
    if len(clients) > 1:
        message += f" This is an account-level key that sees {len(clients)} clients."
    return ConnectionReport(True, Problem.NONE, message, client_id=client_id, client=details,
                            list_count=len(lists), clients=clients, latency_ms=latency)


# ---------------------------------------------------------------------------- health


@dataclass(frozen=True)
class RateLimitHeadroom:
    limit: int | None
    remaining: int | None
    reset_seconds: float | None
    observed_at: datetime

    @property
    def fraction_left(self) -> float | None:
        if self.limit and self.remaining is not None and self.limit > 0:
            return max(0.0, min(1.0, self.remaining / self.limit))
        return None

    def describe(self) -> str:
        parts = []
        if self.remaining is not None and self.limit is not None:
            parts.append(f"{self.remaining} of {self.limit} requests left")
        elif self.remaining is not None:
            parts.append(f"{self.remaining} requests left")
        elif self.limit is not None:
            parts.append(f"limit {self.limit}")
        if self.reset_seconds is not None:
            parts.append(f"window resets in {self.reset_seconds:g} s")
        return ", ".join(parts) or "no rate-limit figures"


@dataclass(frozen=True)
class HealthReport:
    reachable: bool
    problem: Problem
    message: str
    is_demo: bool
    latency_ms: float | None = None
    last_endpoint: str = ""
    last_from_cache: bool = False
    rate_limit: RateLimitHeadroom | None = None
    client: ClientDetails | None = None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def mode(self) -> str:
        return "Demo data (local sandbox)" if self.is_demo else "Real Campaign Monitor account"


def _headroom(cm: CampaignMonitor) -> RateLimitHeadroom | None:
    stats = cm.last_rate_limit
    if stats is None:
        return None
    return RateLimitHeadroom(stats.rate_limit_limit, stats.rate_limit_remaining, stats.rate_limit_reset, stats.at)


def health(client: CampaignMonitor, client_id: str, *, is_demo: bool = False) -> HealthReport:
    """One cheap, uncached ``client_details`` call plus what the client already knows.

    ``fresh=True`` so "reachable" means reachable now, not "a cached answer exists".
    """
    if not client_id:
        return HealthReport(False, Problem.MISSING_CLIENT_ID, "No client ID is configured.", is_demo,
                            rate_limit=_headroom(client))
    try:
        details = client.client_details(client_id, fresh=True)
    except Exception as err:  # the health panel reports, it never raises
        if isinstance(err, CMError):
            problem, message = describe_error(err, client_id=client_id, api_url=client.base_url)
        else:
            problem, message = unexpected_failure(err, client.base_url)
        last = client.last_call
        return HealthReport(False, problem, message, is_demo,
                            latency_ms=last.latency_ms if last else None,
                            last_endpoint=last.endpoint if last else "",
                            rate_limit=_headroom(client))
    last = client.last_call
    return HealthReport(
        True, Problem.NONE, f"API reachable ({details.company_name or client_id}).", is_demo,
        latency_ms=last.latency_ms if last else None,
        last_endpoint=last.endpoint if last else "",
        last_from_cache=bool(last and last.from_cache),
        rate_limit=_headroom(client),
        client=details,
    )


# ---------------------------------------------------------------------------- cache


@dataclass(frozen=True)
class CacheInfo:
    enabled: bool
    backend: str
    size_bytes: int | None
    expiry: dict[str, int]

    def describe_size(self) -> str:
        if not self.enabled:
            return "caching is off"
        if self.size_bytes is None:
            return "size unknown for this backend"
        return human_bytes(self.size_bytes)


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"


def cache_info(client: CampaignMonitor) -> CacheInfo:
    settings = client.cache_settings
    if settings is None or not settings.enabled:
        return CacheInfo(False, "off", None, dict(DEFAULT_EXPIRY))
    backend = settings.backend if isinstance(settings.backend, str) else type(settings.backend).__name__
    try:
        size = client.cache_size_bytes()
    except Exception:  # a broken cache file must not break the Settings page
        size = None
    return CacheInfo(True, backend, size, dict(settings.expiry))


def validate_expiry(values: dict[str, Any]) -> tuple[dict[str, int], list[str]]:
    """Clean per-endpoint expiries: known endpoints only, whole seconds 0..86400."""
    clean: dict[str, int] = {}
    errors: list[str] = []
    for name, raw in values.items():
        if name not in DEFAULT_EXPIRY:
            errors.append(f"unknown endpoint {name!r}")
            continue
        try:
            seconds = int(raw)
        except (TypeError, ValueError):
            errors.append(f"{name}: not a whole number of seconds")
            continue
        if seconds < 0 or seconds > 86400:
            errors.append(f"{name}: must be between 0 and 86400 seconds")
            continue
        clean[name] = seconds
    return clean, errors
