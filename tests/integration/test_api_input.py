"""Bad input of every kind gets a 4xx with {"error":{"code","message","field"}}, never a 500."""

import json

import pytest

from api_client import ADMIN_PASSWORD, Api, admin_api, api_moatd, raw_http  # noqa: F401


def check_error_shape(r):
    e = r.json["error"]
    assert set(e) == {"code", "message", "field"}, e
    assert isinstance(e["code"], str) and isinstance(e["message"], str)
    assert e["field"] is None or isinstance(e["field"], str)


@pytest.mark.parametrize("raw", [b"", b"{", b"{\"name\":}", b"nul\x00l", b"[1,2",
                                 b"{\"name\":\"a\",\"name\":\"b\"}", b"\xff\xfe",
                                 b"{\"name\":\"x\"} trailing"])
def test_malformed_json_400(admin_api, raw):
    d, api = admin_api
    r = api.post("/api/v1/users", raw=raw)
    r.expect(400, "malformed_json")
    check_error_shape(r)


@pytest.mark.parametrize("body,status,code,field", [
    ([1, 2], 422, "invalid_body", None),
    ("str", 422, "invalid_body", None),
    ({"name": 5}, 422, "invalid_type", "name"),
    ({"name": "ok1", "password": ["x"]}, 422, "invalid_type", "password"),
    ({"name": "ok1", "disabled": "yes"}, 422, "invalid_type", "disabled"),
    ({"name": "ok1", "admin": True}, 422, "unknown_field", "admin"),
    ({"password": "password1"}, 422, "missing_field", "name"),
    ({"name": ""}, 422, "invalid_value", "name"),
    ({"name": "a" * 65}, 422, "invalid_value", "name"),
    ({"name": "has space"}, 422, "invalid_value", "name"),
    ({"name": "ok1", "role": "root"}, 422, "invalid_value", "role"),
    ({"name": "ok1", "password": "short"}, 422, "invalid_value", "password"),
    ({"name": "ok\u0000x"}, 400, "malformed_json", None),
])
def test_bad_bodies(admin_api, body, status, code, field):
    d, api = admin_api
    r = api.post("/api/v1/users", body)
    r.expect(status, code, field)
    check_error_shape(r)


def test_duplicate_409(admin_api):
    d, api = admin_api
    api.create_user("twice")
    api.post("/api/v1/users", {"name": "twice"}).expect(409, "duplicate", "name")


def test_oversize_body_413_content_length(api_moatd):
    d = api_moatd(http_max_body="2k")
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    big = {"name": "x" * 3000}
    r = api.post("/api/v1/users", big)
    r.expect(413, "body_too_large")
    check_error_shape(r)
    # Just under the limit is parsed (and refused for its content, not its size).
    api.post("/api/v1/users", {"name": "y" * 1900}).expect(422, "invalid_value", "name")


def test_oversize_body_413_chunked(api_moatd):
    d = api_moatd(http_max_body="2k")
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    chunk = b"a" * 1000
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(4)) + b"0\r\n\r\n"
    req = (b"POST /api/v1/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + body)
    out = raw_http(d.http_port, req)
    assert out.startswith(b"HTTP/1.1 413"), out[:200]
    # Far beyond the limit the connection is dropped instead of read forever.
    huge = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(50))
    out = raw_http(d.http_port, req[:req.index(b"\r\n\r\n") + 4] + huge, timeout=5)
    assert out == b"" or out.startswith(b"HTTP/1.1 413")
    api.get("/api/v1/account").expect(200)  # the server is fine


def test_body_on_get_and_wrong_content_type(admin_api):
    d, api = admin_api
    api.request("GET", "/api/v1/users", raw=b"{}").expect(413, "body_not_allowed")
    api.post("/api/v1/users", raw=b"name=x", content_type="application/x-www-form-urlencoded"
             ).expect(415, "unsupported_media_type")
    api.post("/api/v1/users", raw=b"{}", content_type=None).expect(415)


@pytest.mark.parametrize("query,field,code", [
    ("limit=0", "limit", "invalid_parameter"),
    ("limit=501", "limit", "invalid_parameter"),
    ("limit=abc", "limit", "invalid_parameter"),
    ("limit=-1", "limit", "invalid_parameter"),
    ("limit=99999999999999999999999", "limit", "invalid_parameter"),
    ("offset=-5", "offset", "invalid_parameter"),
    ("offset=1&cursor=1", "cursor", "invalid_parameter"),
    ("cursor=zz", "cursor", "invalid_parameter"),
    ("bogus=1", "bogus", "unknown_parameter"),
    ("limit=1&limit=2", "limit", "invalid_parameter"),
    ("sort=password", "sort", "invalid_parameter"),
    ("role=root", "role", "invalid_parameter"),
    ("disabled=maybe", "disabled", "invalid_parameter"),
    ("q=" + "x" * 100, "q", "invalid_parameter"),
])
def test_bad_query_users(admin_api, query, field, code):
    d, api = admin_api
    r = api.get("/api/v1/users?" + query)
    r.expect(422, code, field)
    check_error_shape(r)


@pytest.mark.parametrize("query,field", [
    ("from=yesterday", "from"), ("to=2026-13-01T00:00:00Z", "to"), ("result=spam", "result"),
    ("sort=sender", "sort"), ("cursor=1", "cursor"), ("cursor=a.b", "cursor"),
    ("from=2000&to=1000", "to"), ("sender=", "sender"),
])
def test_bad_query_messages(admin_api, query, field):
    d, api = admin_api
    api.get("/api/v1/messages?" + query).expect(422, None, field)


@pytest.mark.parametrize("query,field", [
    ("bucket=week", "bucket"), ("from=0&to=1&bucket=hour&x=1", "x"),
    ("from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&bucket=hour", "from"),
])
def test_bad_query_stats(admin_api, query, field):
    d, api = admin_api
    api.get("/api/v1/stats/messages?" + query).expect(422, None, field)


def test_unknown_routes_methods_ids(admin_api):
    d, api = admin_api
    api.get("/api/v1/nothing").expect(404, "not_found")
    api.get("/api/v1/users/").expect(404, "not_found")
    api.get("/api/v1/users/abc").expect(404, "not_found")
    api.get("/api/v1/users/0").expect(404, "not_found")
    api.get("/api/v1/users/99999999999999999999").expect(404, "not_found")
    api.get("/api/v1/users/424242").expect(404, "not_found")
    r = api.request("PUT", "/api/v1/users").expect(405, "method_not_allowed")
    assert "GET" in r.headers["allow"] and "POST" in r.headers["allow"]
    api.request("OPTIONS", "/healthz").expect(405)


def test_no_500_on_garbage(admin_api):
    """A spray of odd requests: every answer is a JSON 4xx (or 2xx)."""
    d, api = admin_api
    paths = ["/api/v1/users?q=%00", "/api/v1/messages?sender=%ff%fe",
             "/api/v1/messages?recipient=%22%27;--", "/api/v1/audit?actor=%25",
             "/api/v1/tokens?user_id=-1", "/api/v1/messages?reason=%25%25",
             "/api/v1/messages?qid=" + "A" * 64, "/%2e%2e/%2e%2e/etc/passwd",
             "/api/v1/users/1/../2", "/api/v1/stats/messages?from=0&to=253402300799999&bucket=day"]
    for p in paths:
        r = api.get(p)
        assert r.status < 500, r
        json.loads(r.body)
    for body in [{"name": "\u202e\u0301x"}, {"name": "a", "password": "p" * 1025},
                 {"current_password": 1, "new_password": None}]:
        r = api.post("/api/v1/users", body)
        assert 400 <= r.status < 500, r
        r = api.put("/api/v1/account/password", body)
        assert 400 <= r.status < 500, r
