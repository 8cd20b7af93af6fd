"""Which API URLs the app may send a Campaign Monitor key to, and when two URLs are the same.

The key is sent as HTTP Basic auth to whatever URL the client is built with, so the URL decides
who receives the key. One rule, applied wherever a URL is typed, configured or used:

- only ``https``, or plain ``http`` to this machine (the local sandbox, a dev server): plain
  http to any other host would send the key in clear text;
- no ``user:password@`` part: the key is the only credential, and a URL must be safe to show;
- no link-local or cloud-metadata address (169.254.0.0/16, fe80::/10, 100.100.100.200,
  fd00:ec2::254, metadata.google.internal, …), in whatever spelling the resolver accepts
  (``2852039166``, ``0xa9.0xfe.0xa9.0xfe``, ``::ffff:169.254.169.254``): the key -- and the
  server's own cloud credentials -- must never be one request away from an instance metadata
  service;
- a URL that parses as one (length, host labels, port), so a typo is named here instead of
  surfacing as a library traceback (a 5,000-character host made urllib3 raise
  ``LocationParseError`` out of the Settings page).

Pure and without Streamlit, so the Settings page, the diagnostics, the runtime and the CLI
agree. Messages never repeat a password from the URL and never echo more than a short prefix;
they are :class:`~cmlib.lazy_text.LazyText`, said in the reader's language where shown.
"""
from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from . import lazy_text as later
from .errors import ConfigurationError

MAX_URL_LENGTH = 2048  # what browsers and most proxies accept; a CM base URL is ~35 characters
MAX_HOST_LENGTH = 253  # DNS limits
MAX_LABEL_LENGTH = 63
EXAMPLE_URL = "https://api.createsend.com/api/v3.3"

# Instance-metadata and similar "ask the platform for credentials" endpoints, beyond the
# link-local ranges (which ipaddress already flags): Alibaba, Azure's wire server, Oracle's
# legacy address, AWS's IPv6 IMDS.
BLOCKED_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "169.254.0.0/16",
    "fe80::/10",
    "100.100.100.200/32",
    "168.63.129.16/32",
    "192.0.0.192/32",
    "fd00:ec2::254/128",
))
BLOCKED_HOSTNAMES = frozenset({
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.azure.internal",
})
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$")
_LEGACY_IPV4 = re.compile(r"^[0-9a-fx.]+$")  # the forms inet_aton accepts besides dotted quads


class UrlProblem(StrEnum):
    """What is wrong with an API URL (``NONE`` when it may be used)."""

    NONE = "ok"
    EMPTY = "empty"
    TOO_LONG = "too_long"
    MALFORMED = "malformed"  # unparseable: spaces, bad host or port
    NOT_HTTP = "not_http"  # ftp:, file:, javascript:, no scheme at all …
    CREDENTIALS = "credentials"  # user:password@host
    QUERY = "query"  # ?… or #… (the client appends paths to the base URL)
    INSECURE = "insecure"  # plain http to a host other than this machine
    METADATA = "metadata"  # link-local / cloud instance metadata
    RESERVED = "reserved"  # 0.0.0.0, multicast, broadcast: never an API server


@dataclass(frozen=True)
class UrlCheck:
    """The verdict on one URL. ``url`` is the normalised form (only when ``ok``)."""

    problem: UrlProblem
    message: str = ""
    url: str = ""
    host: str = ""
    loopback: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is UrlProblem.NONE


class ApiUrlError(ConfigurationError):
    """A configured or typed API URL that the key must not be sent to (see :func:`check_api_url`)."""

    def __init__(self, check: UrlCheck) -> None:
        super().__init__(check.message)
        self.check = check


Resolver = Callable[[str], Iterable[str]]


def system_resolver(host: str) -> list[str]:
    """Every address the system resolver gives for ``host`` ([] when it cannot resolve it)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [str(info[4][0]) for info in infos]


def shorten(text: str, limit: int = 60) -> str:
    """At most ``limit`` characters of a user-supplied string, for a message."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def display_url(url: str | None, limit: int = 60) -> str:
    """A URL as it may appear in a message: shortened, and without any ``user:password@`` part."""
    text = (url or "").strip()
    scheme, sep, rest = text.partition("://")
    if sep:
        authority, slash, tail = rest.partition("/")
        if "@" in authority:
            text = f"{scheme}://…@{authority.rsplit('@', 1)[1]}{slash}{tail}"
    elif "@" in text:
        text = "…@" + text.rsplit("@", 1)[1]
    return shorten(text, limit)


def _bad(problem: UrlProblem, message: str, host: str = "") -> UrlCheck:
    return UrlCheck(problem, message, host=host)


def _as_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, including the legacy IPv4 spellings resolvers accept."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host) and any(ch.isdigit() for ch in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, ValueError):
            return None
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one routes to (mapped, 6to4, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def classify_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> UrlProblem | None:
    """METADATA / RESERVED for an address the key must never go to, else None."""
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            candidates.append(embedded)
    for addr in candidates:
        if addr.is_link_local or any(addr in net for net in BLOCKED_NETWORKS if net.version == addr.version):
            return UrlProblem.METADATA
        if addr.is_unspecified or addr.is_multicast or (isinstance(addr, ipaddress.IPv4Address) and (
                addr in ipaddress.ip_network("0.0.0.0/8") or addr == ipaddress.IPv4Address("255.255.255.255"))):
            return UrlProblem.RESERVED
    return None


def _is_loopback_name(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def _address_message(problem: UrlProblem, shown: str, host: str | None = None) -> str:
    """Why an address is refused; ``host`` when the address is what that host name resolves to."""
    if problem is UrlProblem.METADATA:
        if host is not None:
            return later.t("The host {host} of the API URL resolves to {address}, a link-local / cloud metadata "
                           "address. The API key is never sent there. Use the Campaign Monitor API URL, e.g. "
                           "{example}.", host=host, address=shown, example=EXAMPLE_URL)
        return later.t("The API URL points at {address}, a link-local / cloud metadata address. The API key is "
                       "never sent there. Use the Campaign Monitor API URL, e.g. {example}.", address=shown,
                       example=EXAMPLE_URL)
    if host is not None:
        return later.t("The host {host} of the API URL resolves to {address}, which is not an address an API server "
                       "can have.", host=host, address=shown)
    return later.t("The API URL points at {address}, which is not an address an API server can have.",
                   address=shown)


def _bad_port(raw: str) -> str:
    return later.t("The API URL {url} is not a valid address: the port must be a number from 1 to 65535.",
                   url=repr(shorten(raw)))


def check_api_url(url: str | None, *, resolve: Resolver | None = None) -> UrlCheck:
    """May the API key be sent to ``url``? Never raises; see the module docstring for the rules.

    ``resolve`` (e.g. :func:`system_resolver`) also checks the addresses a host name resolves
    to -- used right before a connection test, where a DNS lookup is about to happen anyway.
    A name that does not resolve passes here: the connection then fails with its own reason.
    """
    raw = (url or "").strip()
    if not raw:
        return _bad(UrlProblem.EMPTY, later.t("Enter the API URL (e.g. {example}).", example=EXAMPLE_URL))
    if len(raw) > MAX_URL_LENGTH:
        return _bad(UrlProblem.TOO_LONG, later.t("The API URL is too long ({length} characters; at most {limit}). "
                                                 "Expected something like {example}.", length=len(raw),
                                                 limit=MAX_URL_LENGTH, example=EXAMPLE_URL))
    if any(ch.isspace() or not ch.isprintable() for ch in raw):
        return _bad(UrlProblem.MALFORMED, later.t("The API URL contains spaces or invisible characters; paste it "
                                                  "again (expected e.g. {example}).", example=EXAMPLE_URL))
    try:
        parts = urlsplit(raw)
        scheme = parts.scheme.lower()
        netloc = parts.netloc
        hostname = parts.hostname or ""
        port = parts.port
    except ValueError as exc:  # "Invalid IPv6 URL", "Port out of range", non-numeric port
        if "port" in str(exc).lower():
            return _bad(UrlProblem.MALFORMED, _bad_port(raw))
        return _bad(UrlProblem.MALFORMED, later.t("The API URL {url} is not a valid address: the host cannot be "
                                                  "read.", url=repr(shorten(raw))))
    if scheme not in ("http", "https"):
        return _bad(UrlProblem.NOT_HTTP, later.t("The API URL {url} is not an http(s) address (expected e.g. "
                                                 "{example}).", url=repr(shorten(raw)), example=EXAMPLE_URL))
    if "@" in netloc:
        return _bad(UrlProblem.CREDENTIALS, later.t("The API URL contains a user name or password (…@ before the "
                                                    "host). Remove it: the API key is the only credential the app "
                                                    "sends."))
    if parts.query or parts.fragment or raw.endswith(("?", "#")):
        return _bad(UrlProblem.QUERY, later.t("The API URL {url} must not contain '?' or '#'; expected e.g. "
                                              "{example}.", url=repr(shorten(raw)), example=EXAMPLE_URL))
    if port == 0:
        return _bad(UrlProblem.MALFORMED, _bad_port(raw))
    if not hostname:
        return _bad(UrlProblem.MALFORMED, later.t("The API URL {url} has no host name (expected e.g. {example}).",
                                                  url=repr(shorten(raw)), example=EXAMPLE_URL))
    host = hostname.rstrip(".")
    if "%" in host:  # an IPv6 zone id (fe80::1%eth0) only exists for link-local addresses
        return _bad(UrlProblem.METADATA, _address_message(UrlProblem.METADATA, shorten(host, 40)), host)
    ip = _as_ip(host)
    if ip is None:
        if len(host) > MAX_HOST_LENGTH or not host:
            return _bad(UrlProblem.MALFORMED, later.t("The host name of the API URL is too long ({length} "
                                                      "characters; at most {limit}).", length=len(hostname),
                                                      limit=MAX_HOST_LENGTH))
        for label in host.split("."):
            if len(label) > MAX_LABEL_LENGTH:
                return _bad(UrlProblem.MALFORMED, later.t("The host name of the API URL has a part longer than "
                                                          "{limit} characters ({part}, {length} characters).",
                                                          limit=MAX_LABEL_LENGTH, part=repr(shorten(label, 20)),
                                                          length=len(label)))
            if not _LABEL.match(label):
                return _bad(UrlProblem.MALFORMED, later.t("The host name {host} of the API URL is not valid "
                                                          "(letters, digits, '-' and '.' only).",
                                                          host=repr(shorten(host, 60))))
        if host in BLOCKED_HOSTNAMES:
            return _bad(UrlProblem.METADATA, _address_message(UrlProblem.METADATA, host), host)
        loopback = _is_loopback_name(host)
        host_for_url = host
    else:
        verdict = classify_address(ip)
        if verdict is not None:
            return _bad(verdict, _address_message(verdict, str(ip)), str(ip))
        loopback = ip.is_loopback or bool(isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped
                                          and ip.ipv4_mapped.is_loopback)
        host_for_url = f"[{ip}]" if ip.version == 6 else str(ip)
    if scheme == "http" and not loopback:
        return _bad(UrlProblem.INSECURE, later.t("The API URL uses plain http to {host}, which would send the API "
                                                 "key unencrypted. Use https (plain http is allowed only for this "
                                                 "machine, e.g. the local sandbox).", host=shorten(host, 60)), host)
    if resolve is not None and ip is None and not loopback:
        for address in resolve(host):
            found = _as_ip(address.split("%", 1)[0])
            verdict = classify_address(found) if found is not None else None
            if verdict is not None:
                return _bad(verdict, _address_message(verdict, str(found), shorten(host, 60)), host)
    default_port = 443 if scheme == "https" else 80
    port_part = f":{port}" if port and port != default_port else ""
    path = parts.path.rstrip("/")
    return UrlCheck(UrlProblem.NONE, "", url=f"{scheme}://{host_for_url}{port_part}{path}", host=host,
                    loopback=loopback)


def normalize_api_url(url: str | None) -> str | None:
    """The canonical form of a usable URL (lower-case scheme and host, no default port, no
    trailing slash), or None when the URL may not be used."""
    check = check_api_url(url)
    return check.url if check.ok else None


def same_api_url(a: str | None, b: str | None) -> bool:
    """True when both URLs are usable and name the same endpoint (``HTTPS://Host:443/x/`` = ``https://host/x``)."""
    na, nb = normalize_api_url(a), normalize_api_url(b)
    return na is not None and na == nb


def require_api_url(url: str | None) -> str:
    """The normalised URL, or :class:`ApiUrlError` (a ConfigurationError) saying what is wrong."""
    check = check_api_url(url)
    if not check.ok:
        raise ApiUrlError(check)
    return check.url
