"""Is the connection right, and is it healthy? The Settings page's "Test connection" and health panel.

Kept pure (no Streamlit) so the messages can be unit-tested against canned API answers and the
CLI can print the same diagnosis. Every message names what is wrong in the admin's terms
(wrong key, wrong client ID, no network) and never contains the key itself: the only thing a
report may say about the key is its last four characters. Messages are
:class:`~cmlib.lazy_text.LazyText`: English as strings (logs, tests), said in the reader's
language where the Settings page shows them, even after the language was switched.

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

from . import lazy_text as later
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
from .i18n import N_, Language, format_number, nt, t
from .models import ClientDetails, ClientRef
from .retry import RetryPolicy
from .urls import EXAMPLE_URL, ApiUrlError, Resolver, check_api_url, display_url, system_resolver

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
    host = _host(api_url) if api_url else ""
    if isinstance(err, AuthenticationError):
        code = err.code
        if code == 100:
            return Problem.INVALID_KEY, later.t(
                "Invalid API key (Code 100): Campaign Monitor does not recognise this key. Copy it again "
                "from Account settings → API keys; a key that was regenerated or deleted stops working.")
        if code == 50:
            return Problem.BAD_AUTH_HEADER, later.t(
                "Bad authorisation header (Code 50): the API did not receive a usable key. Check that the "
                "key was pasted whole, without spaces or line breaks.")
        if code == 102:
            return Problem.CLIENT_NOT_FOUND, later.t(
                "Client ID not found or not yours (Code 102): the key is valid, but client {client} does "
                "not exist or this key may not access it. A client-level key only sees its own client.",
                client=repr(client_id))
        if code in (60, 120, 121, 122):
            return Problem.OAUTH, later.t("OAuth problem ({reason}). Use an API key instead of an OAuth token.",
                                          reason=err)
        return Problem.AUTH_OTHER, later.t("The API refused the credentials ({reason}).", reason=err)
    if isinstance(err, TimeoutError):
        if host:
            return Problem.TIMEOUT, later.t(
                "Timed out at {host} ({reason}). The API may be slow or a firewall may be dropping the "
                "connection; try again, or check the API URL.", host=host, reason=err)
        return Problem.TIMEOUT, later.t(
            "Timed out ({reason}). The API may be slow or a firewall may be dropping the "
            "connection; try again, or check the API URL.", reason=err)
    if isinstance(err, TransportError):
        if host:
            return Problem.NETWORK, later.t("Cannot reach the API at {host} ({reason}). Check the network, proxy "
                                            "settings and the API URL.", host=host, reason=err)
        return Problem.NETWORK, later.t("Cannot reach the API ({reason}). Check the network, proxy settings and "
                                        "the API URL.", reason=err)
    if isinstance(err, RateLimitedError):
        if err.reset_seconds is not None:
            return Problem.RATE_LIMITED, later.t("Rate limited by the API (HTTP 429); wait for about {seconds} s and "
                                                 "try again.", seconds=err.reset_seconds)
        return Problem.RATE_LIMITED, later.t("Rate limited by the API (HTTP 429); wait and try again.")
    if isinstance(err, ServerError):
        return Problem.SERVER, later.t("Campaign Monitor had a server error ({reason}); try again later.", reason=err)
    if isinstance(err, UnexpectedResponseError):
        if host:
            return Problem.UNEXPECTED, later.t(
                "The answer at {host} was not Campaign Monitor JSON ({reason}). Check the API URL "
                "(it should end in /api/v3.3).", host=host, reason=err.message)
        return Problem.UNEXPECTED, later.t(
            "The answer was not Campaign Monitor JSON ({reason}). Check the API URL "
            "(it should end in /api/v3.3).", reason=err.message)
    if isinstance(err, ApiUrlError):
        return Problem.BAD_URL, err.message
    if isinstance(err, ConfigurationError):
        return Problem.MISSING_KEY, err.message
    return Problem.UNEXPECTED, later.t("The API answered with an error ({reason}).", reason=err)


def unexpected_failure(exc: BaseException, api_url: str = "") -> tuple[Problem, str]:
    """A sentence for an exception the HTTP stack should not have raised (logged with its type only)."""
    host = _host(api_url) if api_url else ""
    log.warning("unexpected %s while checking the API%s", type(exc).__name__, f" at {host}" if host else "")
    if host:
        return Problem.UNEXPECTED, later.t(
            "The check of the API at {host} failed unexpectedly ({kind}). Check the API URL "
            "(expected e.g. {example}) and try again.", host=host, kind=type(exc).__name__, example=EXAMPLE_URL)
    return Problem.UNEXPECTED, later.t(
        "The check of the API failed unexpectedly ({kind}). Check the API URL "
        "(expected e.g. {example}) and try again.", kind=type(exc).__name__, example=EXAMPLE_URL)


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
        return ConnectionReport(False, Problem.MISSING_KEY, later.t("Enter an API key first."))
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
                message = later.t("{message} (A client-level key may not be allowed to list clients: enter its "
                                  "client ID and test again.)", message=message)
            return ConnectionReport(False, problem, message, error_code=err.code)
        if not clients:
            return ConnectionReport(False, Problem.MISSING_CLIENT_ID,
                                    later.t("The key is valid but sees no clients. Enter the client ID."))
        if len(clients) > 1:
            return ConnectionReport(
                False, Problem.MISSING_CLIENT_ID,
                later.nt("The key is valid: it is an account-level key that sees {n} client. Choose one.",
                         "The key is valid: it is an account-level key that sees {n} clients. Choose one.",
                         len(clients)),
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
            if len(clients) > 1:
                message = later.nt("{message} This key sees {n} client: choose one of them.",
                                   "{message} This key sees {n} clients: choose one of them.", len(clients),
                                   message=message)
            elif clients:
                message = later.t("{message} This key sees one client: choose it.", message=message)
        return ConnectionReport(False, problem, message, client_id=client_id, clients=clients, error_code=err.code)
    latency = cm.last_call.latency_ms if cm.last_call else (time.perf_counter() - started) * 1000

    try:
        lists = cm.lists(client_id)
    except CMError as err:
        problem, message = describe_error(err, client_id=client_id, api_url=api_url)
        return ConnectionReport(False, problem, later.t("The client was found but its lists could not be read: "
                                                        "{message}", message=message),
                                client_id=client_id, client=details, clients=clients, latency_ms=latency,
                                error_code=err.code)
    if not clients:
        try:
            clients = _clients_or_none(cm) or ()
        except CMError:
            clients = ()

    name = details.company_name or client_id
    # the client's zone is named as such: the dashboard may show times in another one (the browser's)
    zone = later.t("client time zone {zone}", zone=details.time_zone) if details.time_zone else ""
    bits = [b for b in (details.country, zone) if b]
    if bits:
        message = later.nt("Connected to {name} ({details}): {n} list.", "Connected to {name} ({details}): {n} lists.",
                           len(lists), name=name, details=later.join(", ", bits))
    else:
        message = later.nt("Connected to {name}: {n} list.", "Connected to {name}: {n} lists.", len(lists), name=name)
    if len(clients) > 1:
        message = later.nt("{message} This is an account-level key that sees {n} client.",
                           "{message} This is an account-level key that sees {n} clients.", len(clients),
                           message=message)
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

    def describe(self, *, lang: Language | str | None = None) -> str:
        """The figures in ``lang`` (default: the current language)."""
        parts = []
        if self.remaining is not None and self.limit is not None:
            # the API's figures as it sent them (no thousands separator: "250 of 1000")
            parts.append(nt("{remaining} of {n} request left", "{remaining} of {n} requests left", self.limit,
                            lang=lang, remaining=str(self.remaining), n=str(self.limit)))
        elif self.remaining is not None:
            parts.append(nt("{n} request left", "{n} requests left", self.remaining, lang=lang,
                            n=str(self.remaining)))
        elif self.limit is not None:
            parts.append(t("limit {limit}", lang=lang, limit=str(self.limit)))
        if self.reset_seconds is not None:
            parts.append(t("window resets in {seconds} s", lang=lang, seconds=self.reset_seconds))
        return ", ".join(parts) or t("no rate-limit figures", lang=lang)


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
        return later.t("Demo data (local sandbox)") if self.is_demo else later.t("Real Campaign Monitor account")


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
        return HealthReport(False, Problem.MISSING_CLIENT_ID, later.t("No client ID is configured."), is_demo,
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
        True, Problem.NONE, later.t("API reachable ({name}).", name=details.company_name or client_id), is_demo,
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

    def describe_size(self, *, lang: Language | str | None = None) -> str:
        if not self.enabled:
            return t("caching is off", lang=lang)
        if self.size_bytes is None:
            return t("size unknown for this backend", lang=lang)
        return human_bytes(self.size_bytes, lang=lang)


_UNITS = {"KB": N_("{size} KB"), "MB": N_("{size} MB"), "GB": N_("{size} GB")}


def human_bytes(n: int, *, lang: Language | str | None = None) -> str:
    """``512 bytes``, ``1.5 KB`` (Russian ``1,5 КБ``), in ``lang`` (default: the current language)."""
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            if unit == "bytes":
                return nt("{n} byte", "{n} bytes", int(value), lang=lang)
            return t(_UNITS[unit], lang=lang, size=format_number(value, digits=1, lang=lang))
        value /= 1024
    return nt("{n} byte", "{n} bytes", n, lang=lang)


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
            errors.append(later.t("unknown endpoint {name}", name=repr(name)))
            continue
        try:
            seconds = int(raw)
        except (TypeError, ValueError):
            errors.append(later.t("{name}: not a whole number of seconds", name=name))
            continue
        if seconds < 0 or seconds > 86400:
            errors.append(later.t("{name}: must be between 0 and {most} seconds", name=name, most="86400"))
            continue
        clean[name] = seconds
    return clean, errors
