"""Outbound HTTP to URLs users give us (webhooks), without reaching our own network (SSRF).

- Only https (the local stack's WEBHOOK_ALLOW_PRIVATE=1 also allows http and loopback/private hosts).
- The host is resolved and *every* address must be public: private, loopback, link-local,
  unique-local, shared (CGNAT), multicast, reserved and cloud metadata addresses are refused —
  also when spelled as numbers (`0x7f000001`, `2130706433`, `0177.0.0.1`, `[::ffff:127.0.0.1]`) or
  embedded in IPv6 (IPv4-mapped, 6to4, Teredo, NAT64).
- The check runs when a webhook is registered and again before each delivery (DNS changes), and
  the request connects to the address that was checked (no second lookup an attacker could
  answer differently), never follows redirects, and has short timeouts.
Metadata addresses stay refused even with WEBHOOK_ALLOW_PRIVATE.
- URLs are normalised to ASCII (IDNA host, percent-encoded path and query): `normalize`.
- Resolution, connection and the whole exchange share one deadline; every checked address is tried
  in turn until one connects. A failure is a `Response` with a stable `code` (timeout,
  connection_failed, tls_error, protocol_error) and a message that names no socket internals.
"""
from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote, urlsplit, urlunsplit

from chalicelib.errors import ValidationError

MAX_URL_LENGTH = 2048
METADATA = tuple(ipaddress.ip_network(n) for n in (
    "169.254.169.254/32", "169.254.170.2/32", "169.254.169.253/32", "fd00:ec2::254/128", "fd00:ec2::/64",
    "100.100.100.200/32", "192.0.0.192/32"))
NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NUMERIC_V4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$")


class WebhookUrlError(ValidationError):
    """A URL we will not call; `code` says why (docs/events.md lists the codes)."""


class DeadlineExceeded(Exception):
    """The host did not resolve before the delivery's deadline."""


# Characters left as they are when percent-encoding a path or a query: the reserved ones (they carry
# structure) and "%" (an existing escape stays one). Everything else — spaces are refused before —
# non-ASCII included, is encoded as UTF-8 bytes.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str          # as written (lower case), for Host and TLS SNI/certificate checks
    port: int
    path: str          # path and query
    addresses: tuple[str, ...] = ()  # checked addresses, connect to the first that answers


def _fail(code: str, message: str) -> WebhookUrlError:
    return WebhookUrlError(message, code=code, details={"field": "url"})


def parse(url: str, *, allow_private: bool) -> Target:
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise _fail("webhook_url_invalid", f"The webhook URL must be 1 to {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise _fail("webhook_url_invalid", "The webhook URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _fail("webhook_url_invalid", "The webhook URL is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise _fail("webhook_url_not_https", "The webhook URL must start with https://")
    if scheme == "http" and not allow_private:
        raise _fail("webhook_url_not_https", "The webhook URL must use https")
    if parts.username is not None or parts.password is not None:
        raise _fail("webhook_url_invalid", "The webhook URL must not contain credentials")
    host = _ascii_host((parts.hostname or "").rstrip("."))
    if parts.fragment or url.endswith("#"):
        raise _fail("webhook_url_invalid", "The webhook URL must not have a #fragment")
    path = quote(parts.path or "/", safe=_PATH_SAFE) + (f"?{quote(parts.query, safe=_QUERY_SAFE)}" if parts.query else "")
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def _ascii_host(host: str) -> str:
    """The host in lower case, a non-ASCII name in its IDNA (punycode) form."""
    if not host:
        raise _fail("webhook_url_invalid", "The webhook URL has no host")
    if host.isascii():
        return host.lower()
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise _fail("webhook_url_invalid", "The webhook URL's host name is not a valid domain name") from None


def normalize(url: str) -> str:
    """The URL as it is stored and called: IDNA host, percent-encoded path and query, lower-case scheme
    and host, default port left out. WebhookUrlError (webhook_url_invalid…) when it cannot be."""
    target = parse(url, allow_private=True)
    default = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    netloc = host if target.port == default else f"{host}:{target.port}"
    path, _, query = target.path.partition("?")
    return urlunsplit((target.scheme, netloc, path, query, ""))


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names by itself, in any spelling the resolver would accept, or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    if _NUMERIC_V4.match(host.lower()):
        try:  # what getaddrinfo does with it: inet_aton reads 127.1, 0x7f000001, 2130706433, 0177.0.0.1
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            raise _fail("webhook_url_invalid", "The webhook URL's host is not a valid address") from None
    return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = []
    if ip.ipv4_mapped:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour:
        found.append(ip.sixtofour)
    if ip.teredo:
        found.extend(ip.teredo)
    if ip in NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def refusal(ip: Any, *, allow_private: bool) -> str | None:
    """Why this address may not be called, or None when it may."""
    if isinstance(ip, str):
        ip = ipaddress.ip_address(ip)
    if any(ip in net for net in METADATA if net.version == ip.version):
        return "a cloud metadata address"
    if ip.version == 6:
        for inner in _embedded_v4(ip):
            reason = refusal(inner, allow_private=allow_private)
            if reason:
                return reason
    if ip.is_unspecified or ip.is_multicast:
        return "an unspecified or multicast address"
    if allow_private and (ip.is_loopback or ip.is_private):
        return None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private or ip in ipaddress.ip_network("100.64.0.0/10") or ip.is_reserved or not ip.is_global:
        return "a private or reserved address"
    return None


Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _resolve_by(resolver: Resolver, host: str, port: int, deadline: float | None) -> list[str]:
    """The resolver's answer, or DeadlineExceeded once the deadline (time.monotonic()) passes: the
    lookup runs in a daemon thread, so a stuck resolver holds no delivery past its deadline."""
    if deadline is None:
        return resolver(host, port)
    answer: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            answer["addresses"] = resolver(host, port)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller as is
            answer["error"] = exc
        done.set()

    threading.Thread(target=run, daemon=True, name="webhook-dns").start()
    if not done.wait(max(0.0, deadline - time.monotonic())):
        raise DeadlineExceeded(host)
    if "error" in answer:
        raise answer["error"]
    return answer["addresses"]


def check(url: str, *, allow_private: bool, resolver: Resolver = system_resolver,
          deadline: float | None = None) -> Target:
    """The URL parsed (normalised) and resolved, every address allowed; WebhookUrlError (400) otherwise.
    With a `deadline` (time.monotonic()), DeadlineExceeded when the host has not resolved by then."""
    target = parse(url, allow_private=allow_private)
    literal = literal_address(target.host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        if len(target.host) > 253:
            raise _fail("webhook_url_invalid", "The webhook URL's host name is too long")
        try:
            addresses = _resolve_by(resolver, target.host, target.port, deadline)
        except (OSError, UnicodeError):
            raise _fail("webhook_url_unresolvable",
                        f"The webhook host {target.host!r} does not resolve") from None
        if not addresses:
            raise _fail("webhook_url_unresolvable", f"The webhook host {target.host!r} does not resolve")
    for address in addresses:
        reason = refusal(ipaddress.ip_address(address.split("%", 1)[0]), allow_private=allow_private)
        if reason:
            raise _fail("webhook_url_blocked",
                        f"The webhook URL resolves to {reason}; only public addresses can receive webhooks")
    return Target(target.scheme, target.host, target.port, target.path, tuple(addresses))


# ---- the request ---------------------------------------------------------------------------------

class _PinnedHTTPS(http.client.HTTPSConnection):
    """TLS over a socket already connected to a checked address, with SNI and certificate checks
    for the URL's host name."""

    def __init__(self, host: str, sock: socket.socket, port: int, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._raw = sock

    def connect(self) -> None:
        self.sock = self._context.wrap_socket(self._raw, server_hostname=self.host)


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, sock: socket.socket, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._raw = sock

    def connect(self) -> None:
        self.sock = self._raw


@dataclass(frozen=True)
class Response:
    status: int | None
    error: str | None
    duration_ms: int
    code: str | None = None  # why no answer came: timeout, connection_failed, tls_error, protocol_error


_context: ssl.SSLContext | None = None
MAX_READ = 64 * 1024

MESSAGES = {
    "timeout": "No answer within {timeout:g}s",
    "connection_failed": "Could not connect to the endpoint",
    "tls_error": "The TLS handshake with the endpoint failed (certificate or protocol)",
    "protocol_error": "The endpoint did not answer with valid HTTP",
}


def _connect(target: Target, deadline: float, abort: threading.Event,
             opened: list[socket.socket]) -> socket.socket | None:
    """A socket connected to the first checked address that accepts, trying each in turn; each
    attempt gets an equal share of the time left, so a black-holed address cannot use it all."""
    addresses = list(target.addresses)
    for index, address in enumerate(addresses):
        left = deadline - time.monotonic()
        if left <= 0 or abort.is_set():
            return None
        share = left / (len(addresses) - index)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        opened.append(sock)  # the deadline timer closes it, even in the middle of connect()
        sock.settimeout(max(0.01, share))
        try:
            sock.connect((address.split("%", 1)[0], target.port))
            return sock
        except OSError:
            sock.close()
            continue
    return None


def post(target: Target, body: bytes, headers: dict[str, str], *, timeout: float,
         deadline: float | None = None) -> Response:
    """POST to the checked addresses (in turn, until one connects); 3xx is an answer like any other
    (redirects are not followed). Everything — connects, TLS, sending, the answer — ends by `deadline`
    (time.monotonic(); default now + timeout)."""
    global _context
    started = time.monotonic()
    deadline = started + timeout if deadline is None else deadline

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    def failed(code: str) -> Response:
        return Response(None, MESSAGES[code].format(timeout=timeout), took(), code)

    expired = threading.Event()
    opened: list[socket.socket] = []

    def abort() -> None:
        # The socket timeout bounds each read; this bounds the whole exchange (a server dripping one
        # byte every few seconds, a connect in progress) by shutting the sockets down under it.
        expired.set()
        for sock in list(opened):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                sock.close()
            except OSError:
                pass

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), abort)
    timer.daemon = True
    timer.start()
    conn: http.client.HTTPConnection | None = None
    try:
        sock = _connect(target, deadline, expired, opened)
        if sock is None:
            return failed("timeout" if expired.is_set() or time.monotonic() >= deadline else "connection_failed")
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        if target.scheme == "https":
            if _context is None:
                _context = ssl.create_default_context()
            conn = _PinnedHTTPS(target.host, sock, target.port, timeout, _context)
            try:
                conn.connect()
            except ssl.SSLError:
                return failed("timeout" if expired.is_set() else "tls_error")
            except OSError:
                return failed("timeout" if expired.is_set() else "connection_failed")
            opened.append(conn.sock)
        else:
            conn = _PinnedHTTP(target.host, sock, target.port, timeout)
        conn.request("POST", target.path, body=body, headers=headers)
        answer = conn.getresponse()
        answer.read(MAX_READ)  # a little of the body, so the connection closes cleanly; never more
        if expired.is_set():
            return failed("timeout")
        return Response(answer.status, None, took())
    except (socket.timeout, TimeoutError):
        return failed("timeout")
    except ssl.SSLError:
        return failed("timeout" if expired.is_set() else "tls_error")
    except (OSError, http.client.HTTPException, ValueError):
        return failed("timeout" if expired.is_set() else "protocol_error")
    finally:
        timer.cancel()
        if conn is not None:
            conn.close()
        for sock in opened:
            try:
                sock.close()
            except OSError:
                pass
