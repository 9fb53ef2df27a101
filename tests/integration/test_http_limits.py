"""HTTP listener limits against connection floods (docs/api.md, "Limits"): connections per
client address, the deadline for a complete request head, and room for /healthz and an
administrator while hundreds of slow connections are open. Also the answer at / when the
console is not built. Real moatd, real sockets bound to several loopback addresses."""

import errno
import re
import http.client
import select
import socket
import time

from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401
from conftest import IO_TIMEOUT, wait_for

PARTIAL_HEAD = b"GET /healthz HTTP/1.1\r\nHost: moat.test\r\nX-Slow: "


class SourceApi(Api):
    """Api whose connections leave from a given loopback source address."""

    def __init__(self, port, source):
        super().__init__(port)
        self.source = source

    def _conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=IO_TIMEOUT,
                                          source_address=(self.source, 0))


def slow_conn(port, source):
    """A connection from source that sends a request head it never finishes."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(IO_TIMEOUT)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(PARTIAL_HEAD)
    return s


def closed_by_peer(s, wait=0.0):
    """True when the server has closed s (EOF or reset) within wait seconds."""
    r, _, _ = select.select([s], [], [], wait)
    if not r:
        return False
    try:
        return s.recv(4096) == b""
    except ConnectionResetError:
        return True
    except OSError as e:
        return e.errno in (errno.ECONNRESET, errno.EPIPE)


def healthz(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=IO_TIMEOUT)
    try:
        c.request("GET", "/healthz")
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_slow_header_flood_leaves_health_and_admin_answering(api_moatd):
    """300 slow-header connections from 15 loopback addresses (20 each, the default per-address
    limit): all held, yet /healthz, an administrator login and an API call from 127.0.0.1
    still answer. Defaults only (http_max_connections, http_max_connections_per_ip)."""
    d = api_moatd()
    port = d.http_port
    socks = []
    try:
        for i in range(2, 17):
            for _ in range(20):
                socks.append(slow_conn(port, f"127.0.0.{i}"))
        assert len(socks) == 300
        # The flood is held open, not refused: none of them was closed by the server.
        time.sleep(0.3)
        assert not any(closed_by_peer(s) for s in socks)
        status, body = healthz(port)
        assert status == 200, body
        api = Api(port)
        api.login("admin", ADMIN_PASSWORD)
        api.get("/api/v1/users").expect(200)
        api.get("/api/v1/session").expect(200)
        # Still all held: what answered above did not need any of their slots.
        assert not any(closed_by_peer(s) for s in socks)
    finally:
        for s in socks:
            s.close()


def test_per_address_connection_limit(api_moatd):
    d = api_moatd(http_max_connections_per_ip=5)
    port = d.http_port
    socks = [slow_conn(port, "127.0.0.50") for _ in range(5)]
    try:
        time.sleep(0.2)
        assert not any(closed_by_peer(s) for s in socks)
        extra = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT,
                                         source_address=("127.0.0.50", 0))
        try:
            assert closed_by_peer(extra, wait=3.0), "6th connection from one address held"
        finally:
            extra.close()
        assert wait_for(lambda: "HTTP CONNECTION LIMIT from [127.0.0.50] per_ip=5"
                        in d.log_text())
        # Other addresses are not affected, and a freed slot can be used again.
        assert healthz(port)[0] == 200
        SourceApi(port, "127.0.0.51").get("/healthz").expect(200)
        socks.pop().close()

        def sixth_ok():
            try:
                return SourceApi(port, "127.0.0.50").get("/healthz").status == 200
            except OSError:
                return False
        assert wait_for(sixth_ok, timeout=5.0)
    finally:
        for s in socks:
            s.close()


def test_per_address_limit_off(api_moatd):
    """0 turns the per-address limit off (a reverse proxy in front: one address for all)."""
    d = api_moatd(http_max_connections_per_ip=0)
    socks = [slow_conn(d.http_port, "127.0.0.60") for _ in range(40)]
    try:
        time.sleep(0.3)
        assert not any(closed_by_peer(s) for s in socks)
        assert healthz(d.http_port)[0] == 200
    finally:
        for s in socks:
            s.close()


def test_trickled_head_is_cut_at_the_deadline(api_moatd):
    """One byte every 0.5 s keeps libmicrohttpd's inactivity time-out (30 s) from ever firing;
    the head deadline (2 s from connect) still closes the connection."""
    d = api_moatd(http_header_timeout="2s")
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=IO_TIMEOUT)
    head = b"GET /healthz HTTP/1.1\r\nHost: moat.test\r\nX-Trickle: " + b"a" * 100
    t0 = time.monotonic()
    closed_at = None
    try:
        for b in head:
            try:
                s.send(bytes([b]))
            except OSError:
                closed_at = time.monotonic()
                break
            if closed_by_peer(s, wait=0.5):
                closed_at = time.monotonic()
                break
            if time.monotonic() - t0 > 10:
                break
    finally:
        s.close()
    assert closed_at is not None, "trickling client never cut"
    elapsed = closed_at - t0
    assert 1.5 <= elapsed <= 2.0 + 1.5, elapsed
    assert wait_for(lambda: "HTTP HEADER TIMEOUT from [127.0.0.1]" in d.log_text())
    # A prompt request is not affected.
    assert healthz(d.http_port)[0] == 200


def test_slow_flood_is_cleared_by_the_deadline(api_moatd):
    """With a short deadline the slow connections are closed and their slots come back."""
    d = api_moatd(http_header_timeout="1s", http_max_connections_per_ip=10)
    socks = [slow_conn(d.http_port, "127.0.0.70") for _ in range(10)]
    try:
        t0 = time.monotonic()
        assert wait_for(lambda: all(closed_by_peer(s) for s in socks), timeout=4.0)
        assert time.monotonic() - t0 < 3.0
        SourceApi(d.http_port, "127.0.0.70").get("/healthz").expect(200)
    finally:
        for s in socks:
            s.close()


def test_idle_keepalive_connection_closed_after_deadline(api_moatd):
    """After a request, a kept-alive connection must send its next head within the deadline."""
    d = api_moatd(http_header_timeout="1s")
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=IO_TIMEOUT)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: moat.test\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            assert chunk, "closed before the answer"
            data += chunk
        assert data.startswith(b"HTTP/1.1 200"), data
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 4.0 and not closed:
            closed = closed_by_peer(s, wait=0.2)
        assert closed and time.monotonic() - t0 < 3.0
    finally:
        s.close()


def test_console_not_built(api_moatd, tmp_path):
    missing = tmp_path / "no-console"
    d = api_moatd(webui_dir=str(missing))
    assert re.search(r" http (warn: )?webui_missing dir=" + re.escape(str(missing)) +
                     r" reason=\"webui_dir is not a directory\"", d.log_text()), d.log_text()
    api = Api(d.http_port)
    r = api.get("/")
    r.expect(404, "not_found")
    msg = r.error["message"]
    assert "web console is not installed" in msg and "webui_dir is not a directory" in msg
    assert "/api/v1 works" in msg
    r = api.get("/queue").expect(404)  # a console route, same answer
    assert "web console is not installed" in r.error["message"]
    api.login("admin", ADMIN_PASSWORD)
    api.get("/api/v1/users").expect(200)
    assert healthz(d.http_port)[0] == 200


def test_console_dir_without_index(api_moatd, tmp_path):
    empty = tmp_path / "dist"
    empty.mkdir()
    d = api_moatd(webui_dir=str(empty))
    assert "webui_missing" in d.log_text() and "no index.html" in d.log_text()
    r = Api(d.http_port).get("/").expect(404)
    assert "not installed" in r.error["message"] and "no index.html" in r.error["message"]


def test_console_present_no_warning(api_moatd, tmp_path):
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<!doctype html><title>Moat</title>")
    d = api_moatd(webui_dir=str(dist))
    assert "webui_missing" not in d.log_text()
    r = Api(d.http_port).get("/")
    assert r.status == 200 and b"<title>Moat</title>" in r.body


def test_head_deadline_does_not_cut_a_slow_body(api_moatd):
    """Once the head is in, the head deadline no longer applies (the body has its own limits)."""
    d = api_moatd(http_header_timeout="1s")
    body = b'{"username":"admin","password":"wrong-password-here"}'
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=IO_TIMEOUT)
    try:
        s.sendall(b"POST /api/v1/session HTTP/1.1\r\nHost: moat.test\r\n"
                  b"Content-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        t0 = time.monotonic()
        for i in range(0, len(body), 8):  # about 3 s, three times the head deadline
            assert not closed_by_peer(s, wait=0.45), "cut while sending the body"
            s.sendall(body[i:i + 8])
        assert time.monotonic() - t0 > 2.0
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            assert chunk, "closed before the answer"
            data += chunk
        assert data.startswith(b"HTTP/1.1 401"), data
    finally:
        s.close()
