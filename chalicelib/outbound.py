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
from urllib.parse import urlsplit

from chalicelib.errors import ValidationError

MAX_URL_LENGTH = 2048
METADATA = tuple(ipaddress.ip_network(n) for n in (
    "169.254.169.254/32", "169.254.170.2/32", "169.254.169.253/32", "fd00:ec2::254/128", "fd00:ec2::/64",
    "100.100.100.200/32", "192.0.0.192/32"))
NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NUMERIC_V4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$")


class WebhookUrlError(ValidationError):
    """A URL we will not call; `code` says why (docs/events.md lists the codes)."""


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
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _fail("webhook_url_invalid", "The webhook URL has no host")
    if parts.fragment:
        raise _fail("webhook_url_invalid", "The webhook URL must not have a #fragment")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


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


def check(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> Target:
    """The URL parsed and resolved, every address allowed; WebhookUrlError (400) otherwise."""
    target = parse(url, allow_private=allow_private)
    literal = literal_address(target.host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        if len(target.host) > 253:
            raise _fail("webhook_url_invalid", "The webhook URL's host name is too long")
        try:
            addresses = resolver(target.host, target.port)
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
    """TLS to a checked address, with SNI and certificate checks for the URL's host name."""

    def __init__(self, host: str, address: str, port: int, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


@dataclass(frozen=True)
class Response:
    status: int | None
    error: str | None
    duration_ms: int


_context: ssl.SSLContext | None = None
MAX_READ = 64 * 1024


def post(target: Target, body: bytes, headers: dict[str, str], *, timeout: float) -> Response:
    """POST to the checked address; 3xx is an answer like any other (redirects are not followed)."""
    global _context
    started = time.monotonic()
    address = target.addresses[0]
    if target.scheme == "https":
        if _context is None:
            _context = ssl.create_default_context()
        conn: http.client.HTTPConnection = _PinnedHTTPS(target.host, address, target.port, timeout, _context)
    else:
        conn = _PinnedHTTP(target.host, address, target.port, timeout)
    # The socket timeout bounds each read; this bounds the whole exchange (a server sending one byte
    # every few seconds would otherwise hold the worker far longer).
    expired = threading.Event()

    def abort() -> None:
        expired.set()
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    deadline = threading.Timer(timeout, abort)
    deadline.daemon = True
    deadline.start()
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        answer = conn.getresponse()
        answer.read(MAX_READ)  # a little of the body, so the connection closes cleanly; never more
        if expired.is_set():
            raise TimeoutError
        return Response(answer.status, None, int((time.monotonic() - started) * 1000))
    except (socket.timeout, TimeoutError):
        return Response(None, f"timeout after {timeout:g}s", int((time.monotonic() - started) * 1000))
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        if expired.is_set():
            return Response(None, f"timeout after {timeout:g}s", int((time.monotonic() - started) * 1000))
        return Response(None, f"{type(exc).__name__}: {exc}"[:300], int((time.monotonic() - started) * 1000))
    finally:
        deadline.cancel()
        conn.close()
