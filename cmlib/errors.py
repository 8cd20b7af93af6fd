"""One small exception hierarchy for everything the Campaign Monitor API can do to us.

Callers branch on the class (``except RateLimitedError``) instead of parsing strings.
Every error knows the HTTP status, the API ``Code``/``Message`` when the body had them and the
endpoint (method + path, never the query string's secrets and never the API key), so a page
can say "listsforemail for a@x.com failed: ..." without leaking anything.
"""
from __future__ import annotations

from typing import Any

from .i18n import N_, Language, t
from .lazy_text import LazyText

# Codes documented in cm-api.md that mean "your credentials are wrong".
AUTH_CODES = {50, 60, 100, 102, 120, 121, 122}
# How a reason is framed: the API's Code (or the HTTP status) and its Message as sent.
REASON_CODE = N_("Code {code}: {message}")
REASON_HTTP = N_("HTTP {status}: {message}")
# 205-208: the address exists in that state and the add did not say Resubscribe.
STATE_CONFLICT_CODES = {205: "Deleted", 206: "Unsubscribed", 207: "Bounced", 208: "Unconfirmed"}


class Explained(Exception):
    """An exception of ours that says itself to people in their language (:func:`describe` asks
    it); ``str()`` stays English for logs."""

    def describe(self, lang: Language | str | None = None) -> str:
        return str(self)


class CMError(Exception):
    """Base class: anything that went wrong talking to Campaign Monitor."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        endpoint: str = "",
        email: str | None = None,
        list_id: str | None = None,
        result_data: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.endpoint = endpoint
        self.email = email
        self.list_id = list_id
        self.result_data = result_data

    @property
    def reason(self) -> str:
        """A short reason in English, e.g. ``"Code 203: Subscriber not in list"`` (logs, exceptions;
        a person reads :meth:`describe`)."""
        return self.describe(Language.EN)

    def describe(self, lang: Language | str | None = None) -> str:
        """The reason for a person, in ``lang`` (default: the current language).

        Only our framing is translated (``Code``, ``HTTP``) and our own fixed messages; the API's
        ``Message`` is shown as Campaign Monitor wrote it."""
        if self.code is not None:
            return t(REASON_CODE, lang=lang, code=str(self.code), message=self.message)
        if self.status is not None:
            return t(REASON_HTTP, lang=lang, status=str(self.status), message=self.message)
        # No Code and no status: the message is ours (a local or transport failure), not the API's.
        if isinstance(self.message, LazyText):  # a sentence with values in it (cmlib.urls' refusals)
            return self.message.text(lang)
        return t(self.message, lang=lang) if self.message else self.message

    def __str__(self) -> str:
        parts = [self.reason]
        where = self.endpoint
        if where:
            parts.append(f"({where})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, endpoint={self.endpoint!r})"
        )


class AuthenticationError(CMError):
    """401: missing/invalid auth header (50), invalid key (100), client not yours (102), OAuth (120-122, 60)."""


class RateLimitedError(CMError):
    """429. ``reset_seconds`` is X-RateLimit-Reset when the API sent it, else None."""

    def __init__(self, message: str, *, reset_seconds: float | None = None,
                 limit: int | None = None, remaining: int | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.reset_seconds = reset_seconds
        self.limit = limit
        self.remaining = remaining


class ServerError(CMError):
    """5xx from Campaign Monitor or a proxy in front of it."""


class TransportError(CMError):
    """No HTTP answer at all: timeout, refused or reset connection."""


class TimeoutError(TransportError):  # deliberately mirrors httpx naming
    """Connect or read timeout."""


class ApiUnavailableError(TransportError):
    """Not sent: the circuit breaker is open because Campaign Monitor stopped answering.

    Raised before anything goes on the wire, so a write that gets it certainly did not happen.
    ``since`` is when the API stopped answering (UTC), ``retry_in`` the seconds until the next
    probe may go (None while one is in flight).
    """

    def __init__(self, message: str, *, since: Any = None, retry_in: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.since = since
        self.retry_in = retry_in


class UnexpectedResponseError(CMError):
    """A body we cannot use: HTML, malformed JSON, an empty 404."""


class APIError(CMError):
    """Any other documented 4xx with a Code (e.g. 204 suppressed, 214/215 consent, 800-803 paging)."""


class InvalidEmailError(APIError):
    """Code 1: the API rejected the email address."""


class NotInListError(APIError):
    """Code 203: the address is not in that list (or was already removed)."""


class SuppressedError(APIError):
    """Code 204: the address is on the client's suppression list, so it was not added."""


class SubscriberStateError(APIError):
    """Codes 205-208: add without Resubscribe of a Deleted/Unsubscribed/Bounced/Unconfirmed address."""

    @property
    def state(self) -> str | None:
        return STATE_CONFLICT_CODES.get(self.code or 0)


class ConfigurationError(CMError):
    """The app is not configured well enough to make a call (no key, no client ID)."""


def error_for(status: int | None, code: int | None, message: str, **kw: Any) -> CMError:
    """Pick the class for an HTTP status and API Code (the one place that mapping lives)."""
    if status == 401 or (code in AUTH_CODES and status in (None, 400, 401, 403)):
        return AuthenticationError(message, status=status, code=code, **kw)
    if status == 429 or code == 429:
        return RateLimitedError(message, status=status, code=code, **kw)
    if status is not None and status >= 500:
        return ServerError(message, status=status, code=code, **kw)
    if code == 1:
        return InvalidEmailError(message, status=status, code=code, **kw)
    if code == 203:
        return NotInListError(message, status=status, code=code, **kw)
    if code == 204:
        return SuppressedError(message, status=status, code=code, **kw)
    if code in STATE_CONFLICT_CODES:
        return SubscriberStateError(message, status=status, code=code, **kw)
    if code is None:
        return UnexpectedResponseError(message, status=status, code=code, **kw)
    return APIError(message, status=status, code=code, **kw)


def describe(exc: BaseException, *, lang: Language | str | None = None) -> str:
    """The reason of any exception, in one short line a person can read, in ``lang`` (default: the
    current language; a log line passes ``lang=Language.EN`` or uses ``CMError.reason``).

    A ``CMError`` gives its reason ("Code 203: Subscriber not in list", «Код 203: Subscriber not in
    list»: the API's message is never translated), without the endpoint because the caller's
    message already names the email and the list. An exception that describes itself for people
    (an :class:`Explained`, e.g. ``WriteLockTimeout``) does so. Anything else is a bug or a
    local failure (disk, encoding): its class name and text, so support can tell them apart. One
    place for this wording so the pages, the bulk run and the CLI all say it the same way.
    """
    if isinstance(exc, CMError):
        return exc.describe(lang)
    if isinstance(exc, Explained):
        return exc.describe(lang)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def logged(exc: BaseException) -> str:
    """The reason of ``exc`` for a log line: always English, whatever the session speaks (logs
    are read by whoever runs the deployment, and grepped)."""
    return describe(exc, lang=Language.EN)
