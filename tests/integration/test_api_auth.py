"""API authentication: first administrator, sessions (cookie flags, CSRF, logout, idle and
absolute expiry), login limits, API tokens, password change. Real moatd, real HTTP."""

import re
import time

from api_client import ADMIN_PASSWORD, Api, admin_api, api_moatd  # noqa: F401
from conftest import run_moatd, wait_for


def test_first_admin_from_env_and_login(admin_api):
    d, api = admin_api
    assert "administrator admin created with the password from MOAT_ADMIN_PASSWORD" in d.log_text()
    assert ADMIN_PASSWORD not in d.log_text()
    r = api.get("/api/v1/session").expect(200)
    assert r.json["user"]["name"] == "admin" and r.json["admin"] is True
    assert r.json["csrf_token"] == api.csrf


def test_first_admin_generated_password_printed_once(moatd_factory, monkeypatch, tmp_path):
    monkeypatch.delenv("MOAT_ADMIN_PASSWORD", raising=False)
    data = tmp_path / "shared-data"
    d = moatd_factory(data_dir=data)
    m = re.search(r"administrator admin created password=([0-9a-f]{32}) \(shown once", d.log_text())
    assert m, d.log_text()
    pw = m.group(1)
    api = Api(d.http_port)
    api.login("admin", pw)
    assert d.stop() == 0
    # Second start on the same data: no new admin, no password in the log.
    d2 = moatd_factory(data_dir=data)
    assert "administrator admin created" not in d2.log_text()
    Api(d2.http_port).login("admin", pw)


def test_admin_password_env_too_short_is_fatal(tmp_path, monkeypatch):
    monkeypatch.setenv("MOAT_ADMIN_PASSWORD", "short")
    conf = tmp_path / "m.conf"
    conf.write_text(f"data_dir = {tmp_path}/data\nsmtp_listen = 127.0.0.1:0\n"
                    "http_listen = 127.0.0.1:0\ndelivery = no\n")
    p = run_moatd(["-c", conf])
    assert p.returncode == 1
    assert "MOAT_ADMIN_PASSWORD" in p.stderr


def test_session_cookie_flags_plain_http(admin_api):
    d, api = admin_api
    api2 = Api(d.http_port)
    r = api2.login("admin", ADMIN_PASSWORD)
    sc = r.headers["set-cookie"]
    assert "HttpOnly" in sc and "SameSite=Strict" in sc and "Path=/" in sc
    assert "Secure" not in sc
    assert re.match(r"moat_session=[0-9a-f]{64};", sc)


def test_session_cookie_secure_behind_proxy(api_moatd):
    d = api_moatd(http_behind_tls_proxy="yes")
    r = Api(d.http_port).login("admin", ADMIN_PASSWORD)
    assert "; Secure" in r.headers["set-cookie"]


def test_wrong_password_and_unknown_user_look_the_same(admin_api):
    d, api = admin_api
    a = Api(d.http_port).post("/api/v1/session", {"username": "admin", "password": "nope-nope"})
    b = Api(d.http_port).post("/api/v1/session", {"username": "ghost", "password": "nope-nope"})
    a.expect(401, "invalid_credentials")
    b.expect(401, "invalid_credentials")
    assert a.json == b.json


def test_unauthenticated_requests_refused(admin_api):
    d, _ = admin_api
    anon = Api(d.http_port)
    for path in ("/api/v1/session", "/api/v1/account", "/api/v1/users", "/api/v1/tokens",
                 "/api/v1/messages", "/api/v1/audit", "/api/v1/stats/messages", "/metrics"):
        r = anon.get(path).expect(401, "unauthenticated")
        assert r.headers.get("www-authenticate", "").startswith("Bearer")
    anon.cookie = "0" * 64
    anon.get("/api/v1/account").expect(401, "session_expired")


def test_csrf_required_for_cookie_writes(admin_api):
    d, api = admin_api
    api.post("/api/v1/users", {"name": "csrf1", "password": "password1"}, csrf=False).expect(
        403, "csrf_failed")
    api.post("/api/v1/users", {"name": "csrf1", "password": "password1"},
             headers={"X-CSRF-Token": "0" * 64}, csrf=False).expect(403, "csrf_failed")
    api.delete("/api/v1/session", csrf=False).expect(403, "csrf_failed")
    # Nothing was created.
    assert d.query("SELECT count(*) FROM dir_user WHERE name='csrf1'")[0][0] == 0
    # Reads need no token; writes with it work.
    api.get("/api/v1/users").expect(200)
    api.post("/api/v1/users", {"name": "csrf1", "password": "password1"}).expect(201)


def test_logout_ends_session(admin_api):
    d, api = admin_api
    api.delete("/api/v1/session").expect(204)
    assert "Max-Age=0" in api.last_set_cookie
    api.get("/api/v1/account").expect(401)


def test_idle_expiry(api_moatd):
    d = api_moatd(http_session_idle="1s")
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    api.get("/api/v1/account").expect(200)
    time.sleep(1.6)
    api.get("/api/v1/account").expect(401, "session_expired")


def test_absolute_expiry(api_moatd):
    d = api_moatd(http_session_lifetime="2s", http_session_idle="1h")
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    start = time.monotonic()
    while time.monotonic() < start + 1.4:  # activity does not extend it
        api.get("/api/v1/account").expect(200)
        time.sleep(0.3)
    time.sleep(max(0.0, start + 2.4 - time.monotonic()))
    api.get("/api/v1/account").expect(401, "session_expired")


def test_login_limit_per_account(api_moatd):
    """The per-account limit over all addresses holds for an address that never logged in to
    the account (127.0.0.1 here; known-good addresses: test_login_throttle.py)."""
    d = api_moatd(http_login_max_per_account=3, http_login_window="3s")
    api = Api(d.http_port)
    for _ in range(3):
        api.post("/api/v1/session", {"username": "admin", "password": "wrong-pass"}).expect(401)
    r = api.post("/api/v1/session", {"username": "admin", "password": ADMIN_PASSWORD})
    r.expect(429, "too_many_attempts")
    assert 1 <= int(r.headers["retry-after"]) <= 3
    # Other accounts from the same address are not blocked by the account limit.
    api.post("/api/v1/session", {"username": "other", "password": "wrong-pass"}).expect(401)
    time.sleep(3.2)  # the window slides
    api.login("admin", ADMIN_PASSWORD)


def test_login_limit_per_address(api_moatd):
    d = api_moatd(http_login_max_per_addr=4, http_login_max_per_account=100)
    api = Api(d.http_port)
    for i in range(4):
        api.post("/api/v1/session", {"username": f"u{i}", "password": "wrong-pass"}).expect(401)
    r = api.post("/api/v1/session", {"username": "admin", "password": ADMIN_PASSWORD})
    r.expect(429, "too_many_attempts")
    assert int(r.headers["retry-after"]) >= 1
    assert "LOGIN LIMIT from [127.0.0.1]" in d.log_text()


def test_login_success_clears_account_failures(api_moatd):
    """A login forgets that address's failures for the account (the throttle starts over)."""
    d = api_moatd(login_throttle_after=3)
    api = Api(d.http_port)
    for _ in range(2):
        api.post("/api/v1/session", {"username": "admin", "password": "wrong-pass"}).expect(401)
    api.login("admin", ADMIN_PASSWORD)
    assert d.query("SELECT count(*) FROM api_login_failure WHERE account = 'admin'")[0][0] == 0
    for _ in range(2):
        api.post("/api/v1/session", {"username": "admin", "password": "wrong-pass"}).expect(401)
    api.login("admin", ADMIN_PASSWORD)


def test_token_lifecycle(admin_api):
    d, api = admin_api
    created = api.create_token("ci", scope="admin")
    tok = created["token"]
    assert re.fullmatch(r"moat_[0-9a-f]{64}", tok)
    assert tok.startswith(created["prefix"]) and created["active"] and created["last_used"] is None
    # Stored hashed: the token text is nowhere in the database.
    assert d.query("SELECT count(*) FROM api_token WHERE hash = ? OR prefix = ?",
                   (tok, tok))[0][0] == 0
    # Shown once: neither list nor show returns it.
    lst = api.get("/api/v1/tokens").expect(200).json["items"]
    assert [t["name"] for t in lst] == ["ci"] and "token" not in lst[0]
    assert "token" not in api.get(f"/api/v1/tokens/{created['id']}").expect(200).json
    # Use it: no cookie, no CSRF needed.
    t = Api(d.http_port, token=tok)
    assert t.get("/api/v1/session").expect(200).json["via"] == "token"
    t.post("/api/v1/users", {"name": "viatoken", "password": "password1"}).expect(201)
    shown = api.get(f"/api/v1/tokens/{created['id']}").expect(200).json
    assert shown["last_used"] is not None
    # Revoke: refused from then on; still listed as revoked.
    api.delete(f"/api/v1/tokens/{created['id']}").expect(204)
    t.get("/api/v1/session").expect(401, "invalid_token")
    lst = api.get("/api/v1/tokens?revoked=true").expect(200).json["items"]
    assert lst[0]["active"] is False and lst[0]["revoked"] is not None
    # A wrong or malformed token.
    Api(d.http_port, token="moat_" + "0" * 64).get("/api/v1/account").expect(401, "invalid_token")
    Api(d.http_port).get("/api/v1/account", headers={"Authorization": "Basic eDp5"}).expect(
        401, "invalid_token")


def test_token_duplicate_name_and_bad_scope(admin_api):
    d, api = admin_api
    api.create_token("dup")
    api.post("/api/v1/tokens", {"name": "dup"}).expect(409, "duplicate", "name")
    api.post("/api/v1/tokens", {"name": "x", "scope": "root"}).expect(422, "invalid_value", "scope")
    api.post("/api/v1/tokens", {"name": "bad name!"}).expect(422, "invalid_value", "name")


def test_user_scoped_token_of_admin_is_not_admin(admin_api):
    d, api = admin_api
    tok = api.create_token("limited", scope="user")["token"]
    t = Api(d.http_port, token=tok)
    assert t.get("/api/v1/session").expect(200).json["admin"] is False
    t.get("/api/v1/users").expect(403, "forbidden")
    t.get("/metrics").expect(403, "forbidden")
    t.get("/api/v1/account").expect(200)


def test_password_change(admin_api):
    d, api = admin_api
    api.create_user("carol", password="carol-pass-1")
    c1 = Api(d.http_port)
    c1.login("carol", "carol-pass-1")
    c2 = Api(d.http_port)
    c2.login("carol", "carol-pass-1")
    c1.put("/api/v1/account/password", {"current_password": "wrong-one", "new_password": "x" * 10}
           ).expect(422, "wrong_password", "current_password")
    c1.put("/api/v1/account/password", {"current_password": "carol-pass-1", "new_password": "short"}
           ).expect(422, "invalid_value", "new_password")
    c1.put("/api/v1/account/password",
           {"current_password": "carol-pass-1", "new_password": "carol-pass-2"}).expect(204)
    c1.get("/api/v1/account").expect(200)          # this session survives
    c2.get("/api/v1/account").expect(401)          # the others end
    Api(d.http_port).login("carol", "carol-pass-1", expect=401)
    Api(d.http_port).login("carol", "carol-pass-2")


def test_disabled_user_cannot_log_in_and_loses_sessions(admin_api):
    d, api = admin_api
    u = api.create_user("dave", password="dave-pass-1")
    dv = Api(d.http_port)
    dv.login("dave", "dave-pass-1")
    tok = dv.create_token("dtok")["token"]
    api.patch(f"/api/v1/users/{u['id']}", {"disabled": True}).expect(200)
    dv.get("/api/v1/account").expect(401)
    Api(d.http_port, token=tok).get("/api/v1/account").expect(401)
    Api(d.http_port).login("dave", "dave-pass-1", expect=401)
