"""A small client for moatd's JSON API, used by tests/integration/test_api_*.py.

    api = Api(moatd.http_port)
    api.login("admin", ADMIN_PASSWORD)          # session cookie + CSRF token kept
    r = api.get("/api/v1/users"); r.status, r.json
    tok = Api(port, token="moat_...")            # Bearer token instead of a cookie

Every response is also appended to RECORDED (method, path, status, headers, body) so that
the contract test can validate what the other tests saw. Every request has a timeout.
"""

import http.client
import json
import os
import socket
import sqlite3
import ssl
import time

import pytest

ADMIN_PASSWORD = "admin-test-password-1"
IO_TIMEOUT = 10.0

RECORDED = []


class Resp:
    def __init__(self, method, path, status, headers, body):
        self.method = method
        self.path = path
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body
        self._json = None

    @property
    def json(self):
        if self._json is None:
            assert self.body, f"{self.method} {self.path}: empty body (status {self.status})"
            self._json = json.loads(self.body)
        return self._json

    @property
    def error(self):
        e = self.json.get("error")
        assert isinstance(e, dict), f"not an error body: {self.body!r}"
        return e

    def expect(self, status, code=None, field=None):
        assert self.status == status, (
            f"{self.method} {self.path}: got {self.status} {self.body[:400]!r}, want {status}")
        if code is not None:
            assert self.error["code"] == code, f"got error {self.error}, want code {code}"
        if field is not None:
            assert self.error["field"] == field, f"got error {self.error}, want field {field}"
        return self

    def __repr__(self):
        return f"Resp({self.method} {self.path} {self.status} {self.body[:200]!r})"


class Api:
    def __init__(self, port, host="127.0.0.1", token=None, tls_context=None):
        self.host = host
        self.port = port
        self.token = token
        self.cookie = None
        self.csrf = None
        self.tls_context = tls_context
        self.last_set_cookie = None

    def _conn(self):
        if self.tls_context is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=IO_TIMEOUT,
                                               context=self.tls_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=IO_TIMEOUT)

    def request(self, method, path, body=None, raw=None, headers=None, csrf=True,
                content_type="application/json", auth=True):
        hdrs = {}
        data = None
        if raw is not None:
            data = raw
        elif body is not None:
            data = json.dumps(body).encode()
        if data is not None and content_type:
            hdrs["Content-Type"] = content_type
        if auth and self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        if auth and self.cookie:
            hdrs["Cookie"] = f"moat_session={self.cookie}"
            if csrf and self.csrf and method not in ("GET", "HEAD"):
                hdrs["X-CSRF-Token"] = self.csrf
        hdrs.update(headers or {})
        conn = self._conn()
        try:
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            resp = Resp(method, path, r.status, {k.lower(): v for k, v in r.getheaders()},
                        r.read())
        finally:
            conn.close()
        sc = resp.headers.get("set-cookie")
        if sc:
            self.last_set_cookie = sc
        RECORDED.append(resp)
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def login(self, user, password, expect=201):
        r = self.post("/api/v1/session", {"username": user, "password": password}, auth=False)
        assert r.status == expect, f"login {user}: {r}"
        if r.status == 201:
            sc = r.headers["set-cookie"]
            self.cookie = sc.split(";", 1)[0].split("=", 1)[1]
            self.csrf = r.json["csrf_token"]
        return r

    def create_user(self, name, password="password-" + "x" * 4, role="user"):
        r = self.post("/api/v1/users", {"name": name, "password": password, "role": role})
        r.expect(201)
        return r.json

    def create_token(self, name, scope="user"):
        r = self.post("/api/v1/tokens", {"name": name, "scope": scope})
        r.expect(201)
        return r.json


def raw_http(port, data, timeout=IO_TIMEOUT):
    """Sends raw bytes, returns everything the server sends until it closes (or timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        if len(rest) >= int(line.split(b":")[1]):
                            return out
        return out
    finally:
        s.close()


def insert_log_rows(db_path, rows):
    """Inserts message_log rows (dicts) straight into the daemon's database."""
    con = sqlite3.connect(str(db_path), timeout=10)
    try:
        cols = ["ts", "session_id", "qid", "client_addr", "client_name", "helo", "sender",
                "recipients", "size", "result", "code", "reason", "check_name"]
        con.executemany(
            f"INSERT INTO message_log ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [tuple(r.get(c) for c in cols) for r in rows])
        con.commit()
    finally:
        con.close()


def log_row(i, ts, **kw):
    row = {"ts": ts, "session_id": f"s{i:06d}", "qid": None, "client_addr": "192.0.2.1",
           "client_name": "client.example", "helo": "client.example",
           "sender": f"sender{i % 10}@example.net",
           "recipients": json.dumps([f"rcpt{i % 7}@example.org"]), "size": 1000 + i,
           "result": "accepted", "code": "250 2.0.0", "reason": None, "check_name": None}
    row.update(kw)
    return row


@pytest.fixture
def api_moatd(moatd_factory, monkeypatch):
    """A moatd whose first administrator is admin / ADMIN_PASSWORD: factory(**conf) -> Moatd."""
    monkeypatch.setenv("MOAT_ADMIN_PASSWORD", ADMIN_PASSWORD)

    def start(**conf):
        return moatd_factory(**conf)
    return start


@pytest.fixture
def admin_api(api_moatd):
    """(moatd, Api logged in as admin)."""
    d = api_moatd()
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    return d, api
