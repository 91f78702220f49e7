"""Webhook URLs that must never be called (SSRF), in every spelling, and the ones that may."""
from __future__ import annotations

import pytest

from chalicelib.events import outbound
from chalicelib.events.outbound import WebhookUrlError


def resolver(table: dict[str, list[str]]):
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError("Name or service not known")
        return table[host]
    return resolve


DNS = resolver({
    "hooks.example.com": ["93.184.215.14"],
    "v6.example.com": ["2606:4700:4700::1111"],
    "rebind.example.com": ["93.184.215.14", "10.0.0.5"],  # one private answer among public ones
    "internal.example.com": ["192.168.1.10"],
    "localhost": ["127.0.0.1", "::1"],
    "metadata.example.com": ["169.254.169.254"],
})

HOSTILE = [
    ("https://127.0.0.1/hook", "webhook_url_blocked"),
    ("https://127.1/hook", "webhook_url_blocked"),
    ("https://0x7f000001/hook", "webhook_url_blocked"),
    ("https://2130706433/hook", "webhook_url_blocked"),
    ("https://0177.0.0.1/hook", "webhook_url_blocked"),
    ("https://0x7f.0.0.1/hook", "webhook_url_blocked"),
    ("https://[::1]/hook", "webhook_url_blocked"),
    ("https://[::ffff:127.0.0.1]/hook", "webhook_url_blocked"),
    ("https://[::ffff:7f00:1]/hook", "webhook_url_blocked"),
    ("https://[::127.0.0.1]/hook", "webhook_url_blocked"),
    ("https://[64:ff9b::a9fe:a9fe]/hook", "webhook_url_blocked"),   # NAT64 of 169.254.169.254
    ("https://[2002:7f00:1::]/hook", "webhook_url_blocked"),         # 6to4 of 127.0.0.1
    ("https://169.254.169.254/latest/meta-data/", "webhook_url_blocked"),
    ("https://2852039166/latest/meta-data/", "webhook_url_blocked"),  # 169.254.169.254 as one number
    ("https://[fd00:ec2::254]/latest/meta-data/", "webhook_url_blocked"),
    ("https://[fe80::1]/hook", "webhook_url_blocked"),
    ("https://[fc00::1]/hook", "webhook_url_blocked"),
    ("https://10.1.2.3/hook", "webhook_url_blocked"),
    ("https://172.16.0.1/hook", "webhook_url_blocked"),
    ("https://192.168.0.1/hook", "webhook_url_blocked"),
    ("https://100.64.0.1/hook", "webhook_url_blocked"),
    ("https://0.0.0.0/hook", "webhook_url_blocked"),
    ("https://224.0.0.1/hook", "webhook_url_blocked"),
    ("https://localhost/hook", "webhook_url_blocked"),
    ("https://internal.example.com/hook", "webhook_url_blocked"),
    ("https://metadata.example.com/hook", "webhook_url_blocked"),
    ("https://rebind.example.com/hook", "webhook_url_blocked"),
    ("http://hooks.example.com/hook", "webhook_url_not_https"),
    ("ftp://hooks.example.com/hook", "webhook_url_not_https"),
    ("file:///etc/passwd", "webhook_url_not_https"),
    ("gopher://127.0.0.1:6379/_", "webhook_url_not_https"),
    ("https://user:pass@hooks.example.com/hook", "webhook_url_invalid"),
    ("https:///hook", "webhook_url_invalid"),
    ("https://hooks.example.com:99999/hook", "webhook_url_invalid"),
    ("https://hooks.example.com/ho ok", "webhook_url_invalid"),
    ("https://999.1.1.1/hook", "webhook_url_invalid"),
    ("https://nowhere.invalid/hook", "webhook_url_unresolvable"),
    ("", "webhook_url_invalid"),
    ("https://hooks.example.com/" + "a" * 2100, "webhook_url_invalid"),
]


@pytest.mark.parametrize("url,code", HOSTILE)
def test_hostile_urls_are_refused_with_a_clear_code(url, code):
    with pytest.raises(WebhookUrlError) as info:
        outbound.check(url, allow_private=False, resolver=DNS)
    assert info.value.code == code and info.value.status == 400 and info.value.message


@pytest.mark.parametrize("url,addresses", [
    ("https://hooks.example.com/hook?x=1", ("93.184.215.14",)),
    ("https://v6.example.com:8443/h", ("2606:4700:4700::1111",)),
    ("https://93.184.215.14/h", ("93.184.215.14",)),
])
def test_public_https_urls_pass_with_the_checked_addresses(url, addresses):
    target = outbound.check(url, allow_private=False, resolver=DNS)
    assert target.addresses == addresses and target.scheme == "https"


def test_the_local_setting_allows_http_and_loopback_but_never_metadata():
    target = outbound.check("http://127.0.0.1:9000/hook", allow_private=True, resolver=DNS)
    assert (target.scheme, target.addresses, target.port, target.path) == ("http", ("127.0.0.1",), 9000, "/hook")
    assert outbound.check("http://localhost:9000/", allow_private=True, resolver=DNS).addresses == ("127.0.0.1", "::1")
    for url in ("http://169.254.169.254/", "http://[fd00:ec2::254]/", "http://2852039166/"):
        with pytest.raises(WebhookUrlError) as info:
            outbound.check(url, allow_private=True, resolver=DNS)
        assert info.value.code == "webhook_url_blocked"


def _server(handler):
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handler, args=(conn,), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    return listener


def test_a_server_that_drips_its_answer_is_cut_off_at_the_timeout():
    import time

    def drip(conn):
        conn.recv(65536)
        try:
            for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok":
                conn.send(bytes([byte]))
                time.sleep(0.3)  # each read is quick; the whole answer is not
        except OSError:
            pass
        conn.close()

    listener = _server(drip)
    target = outbound.check(f"http://127.0.0.1:{listener.getsockname()[1]}/h", allow_private=True, resolver=DNS)
    started = time.monotonic()
    response = outbound.post(target, b"{}", {"content-type": "application/json"}, timeout=1.0)
    listener.close()
    assert response.status is None and response.code == "timeout" and response.error == "No answer within 1s"
    assert time.monotonic() - started < 2.0


@pytest.mark.parametrize("status", [200, 302, 503])
def test_the_status_is_answered_as_is_and_redirects_are_not_followed(status):
    seen = []

    def answer(conn):
        seen.append(conn.recv(65536))
        conn.send(f"HTTP/1.1 {status} X\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\n\r\n".encode())
        conn.close()

    listener = _server(answer)
    target = outbound.check(f"http://127.0.0.1:{listener.getsockname()[1]}/h?a=1", allow_private=True, resolver=DNS)
    response = outbound.post(target, b"{}", {"webhook-id": "evt_1"}, timeout=2.0)
    listener.close()
    assert response.status == status and len(seen) == 1
    assert seen[0].startswith(b"POST /h?a=1 HTTP/1.1") and b"webhook-id: evt_1" in seen[0]


# ---- issue 26: URLs normalised, every address tried, one deadline, stable error codes ----------

@pytest.mark.parametrize("url,normal", [
    ("https://93.184.216.34/é", "https://93.184.216.34/%C3%A9"),
    ("https://93.184.216.34/a?q=ü&x=1", "https://93.184.216.34/a?q=%C3%BC&x=1"),
    ("https://93.184.216.34/already%20encoded?a=%2F", "https://93.184.216.34/already%20encoded?a=%2F"),
    ("https://BÜCHER.example/hook", "https://xn--bcher-kva.example/hook"),
    ("https://Hooks.Example.com:8443", "https://hooks.example.com:8443/"),
])
def test_urls_are_normalised_to_ascii(url, normal):
    assert outbound.normalize(url) == normal


def test_a_non_ascii_path_is_sent_percent_encoded():
    seen = []

    def answer(conn):
        seen.append(conn.recv(65536))
        conn.send(b"HTTP/1.1 204 X\r\ncontent-length: 0\r\n\r\n")
        conn.close()

    listener = _server(answer)
    target = outbound.check(f"http://127.0.0.1:{listener.getsockname()[1]}/é?q=ü", allow_private=True, resolver=DNS)
    response = outbound.post(target, b"{}", {}, timeout=2.0)
    listener.close()
    assert response.status == 204 and response.code is None
    assert seen[0].startswith(b"POST /%C3%A9?q=%C3%BC HTTP/1.1")


def test_a_host_that_cannot_be_idna_encoded_is_invalid():
    with pytest.raises(WebhookUrlError) as info:
        outbound.check("https://a..b\u3002/x", allow_private=False, resolver=DNS)
    assert info.value.code == "webhook_url_invalid"


def test_every_resolved_address_is_tried_in_turn():
    import socket

    dead = socket.socket()
    dead.bind(("127.0.0.2", 0))  # bound, never listening: connection refused
    port = dead.getsockname()[1]

    def answer(conn):
        conn.recv(65536)
        conn.send(b"HTTP/1.1 200 X\r\ncontent-length: 0\r\n\r\n")
        conn.close()

    listener = socket.socket()
    listener.bind(("127.0.0.1", port))
    listener.listen(5)
    import threading
    threading.Thread(target=lambda: answer(listener.accept()[0]), daemon=True).start()
    dns = resolver({"two.example.com": ["127.0.0.2", "127.0.0.1"]})
    target = outbound.check(f"http://two.example.com:{port}/h", allow_private=True, resolver=dns)
    response = outbound.post(target, b"{}", {}, timeout=2.0)
    listener.close()
    dead.close()
    assert response.status == 200


def test_a_refused_connection_has_a_stable_code_and_names_no_socket_internals():
    import socket

    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    target = outbound.check(f"http://127.0.0.1:{dead.getsockname()[1]}/h", allow_private=True, resolver=DNS)
    response = outbound.post(target, b"{}", {}, timeout=2.0)
    dead.close()
    assert response.status is None and response.code == "connection_failed"
    assert "Error" not in response.error and "Errno" not in response.error and "refused" not in response.error.lower()


def test_a_tls_failure_has_its_own_code():
    def plain_http(conn):
        conn.recv(65536)
        conn.send(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        conn.close()

    listener = _server(plain_http)
    target = outbound.Target("https", "hooks.example.com", listener.getsockname()[1], "/h", ("127.0.0.1",))
    response = outbound.post(target, b"{}", {}, timeout=2.0)
    listener.close()
    assert response.code == "tls_error" and "SSL" not in response.error


def test_a_slow_resolver_counts_against_the_same_deadline():
    import threading
    import time

    gate = threading.Event()

    def slow(host, port):
        gate.wait(5)
        return ["93.184.215.14"]

    started = time.monotonic()
    with pytest.raises(outbound.DeadlineExceeded):
        outbound.check("https://slow.example.com/h", allow_private=False, resolver=slow,
                       deadline=time.monotonic() + 0.3)
    gate.set()
    assert time.monotonic() - started < 1.0


def test_a_connect_that_hangs_is_cut_off_at_the_deadline():
    import time

    import socket

    # A listener whose backlog is full and never accepts: further SYNs are dropped, connects hang.
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    fillers = []
    for _ in range(8):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        fillers.append(s)
    target = outbound.Target("http", "blackhole.example.com", port, "/h", ("127.0.0.1", "127.0.0.1"))
    started = time.monotonic()
    response = outbound.post(target, b"{}", {}, timeout=0.6)
    elapsed = time.monotonic() - started
    for s in fillers:
        s.close()
    full.close()
    assert elapsed < 1.2
    assert response.status is None and response.code in ("timeout", "connection_failed")
