"""Login throttling (docs/api.md "Login limits", docs/submission.md): failed logins are
throttled per (account, client address) with growing waits, so that wrong passwords from one
address never lock the owner out from another; a per-account limit over all addresses stays
far above that and never applies to an address the account has logged in from before.
The API (429 + Retry-After) and SMTP AUTH (454 4.7.0) share the same records.
Attackers' connections leave from 127.0.0.2.. (bound source addresses); the owner is on
127.0.0.1."""

import base64
import http.client
import smtplib
import time

from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401
from conftest import IO_TIMEOUT
from submission_util import SUBMISSION_CONF, add_user, tls_context

PW = "alice-password-1"


class SourceApi(Api):
    """Api whose connections leave from a given loopback source address."""

    def __init__(self, port, source):
        super().__init__(port)
        self.source = source

    def _conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=IO_TIMEOUT,
                                          source_address=(self.source, 0))


def smtp_tls_from(port, source):
    s = smtplib.SMTP("127.0.0.1", port, timeout=IO_TIMEOUT, source_address=(source, 0))
    s.ehlo("client.example")
    s.starttls(context=tls_context())
    s.ehlo("client.example")
    return s


def b64(s):
    return base64.b64encode(s.encode()).decode()


def auth_plain(s, user, pw):
    return s.docmd("AUTH", "PLAIN " + b64(f"\0{user}\0{pw}"))


def login(api, user, pw):
    return api.post("/api/v1/session", {"username": user, "password": pw}, auth=False)


def test_api_attacker_is_throttled_owner_is_not(api_moatd):
    d = api_moatd()  # defaults: login_throttle_after 5, login_throttle_delay 2s
    attacker = SourceApi(d.http_port, "127.0.0.2")
    for _ in range(5):  # login_throttle_after = 5
        login(attacker, "admin", "wrong-pass").expect(401, "invalid_credentials")
    # The owner, from another address, is not locked out.
    owner = Api(d.http_port)
    owner.login("admin", ADMIN_PASSWORD)
    r = login(attacker, "admin", ADMIN_PASSWORD)  # not even checked
    r.expect(429, "too_many_attempts")
    assert int(r.headers["retry-after"]) == 2
    for _ in range(30):
        login(attacker, "admin", "wrong-pass").expect(429)
    assert "LOGIN LIMIT from [127.0.0.2] limit=throttle" in d.log_text()
    # Nor while the attacker keeps hammering.
    Api(d.http_port).login("admin", ADMIN_PASSWORD)
    owner.get("/api/v1/users").expect(200)
    # Throttled tries were not recorded as failures.
    assert d.query("SELECT count(*) FROM api_login_failure WHERE client_addr = '127.0.0.2'")[0][0] == 5
    # After the wait one more try is checked; the next wait doubles.
    time.sleep(2.1)
    login(attacker, "admin", "wrong-pass").expect(401)
    r = login(attacker, "admin", "wrong-pass").expect(429)
    assert int(r.headers["retry-after"]) == 4
    # Another account from the attacker's address is its own pair.
    login(attacker, "nobody", "wrong-pass").expect(401)
    assert d.query("SELECT count(*) FROM login_known_addr WHERE account = 'admin'"
                   " AND client_addr = '127.0.0.1'")[0][0] == 1


def test_smtp_attacker_is_throttled_owner_is_not(moatd_factory, monkeypatch):
    monkeypatch.setenv("MOAT_ADMIN_PASSWORD", ADMIN_PASSWORD)
    d = moatd_factory(auth_fail_delay="0", **SUBMISSION_CONF)
    add_user(d, "alice", ["alice@example.com"], PW)
    attacker = smtp_tls_from(d.smtp_port, "127.0.0.2")
    for i in range(5):  # distinct guesses: a repeated one is answered from the cache
        assert auth_plain(attacker, "alice", f"guess{i}")[0] == 535
    code, resp = auth_plain(attacker, "alice", PW)
    assert code == 454 and resp.startswith(b"4.7.0"), resp  # throttled: not checked
    for i in range(3):
        assert auth_plain(attacker, "alice", f"guess-more{i}")[0] == 454
    attacker.quit()
    assert "AUTH ACCOUNT LIMIT from [127.0.0.2]" in d.log_text()
    # The owner authenticates from 127.0.0.1, by SMTP and by the API.
    owner = smtp_tls_from(d.smtp_port, "127.0.0.1")
    code, resp = auth_plain(owner, "alice", PW)
    assert code == 235, resp
    owner.quit()
    Api(d.http_port).login("alice", PW)
    # One record for both protocols: the attacker's address is throttled on the API too.
    login(SourceApi(d.http_port, "127.0.0.2"), "alice", PW).expect(429, "too_many_attempts")
    assert "alice" not in d.log_text().split("AUTH ACCOUNT LIMIT")[1].split("\n")[0]


def test_api_global_limit_spares_known_addresses(api_moatd):
    """Many addresses (each under its own throttle) reach the per-account limit: an address that
    never logged in is refused even with the right password; the owner's known address is not."""
    d = api_moatd(http_login_max_per_account=6, login_throttle_after=2)
    owner = Api(d.http_port)
    owner.login("admin", ADMIN_PASSWORD)  # 127.0.0.1 becomes known-good for admin
    for i in (2, 3, 4):
        a = SourceApi(d.http_port, f"127.0.0.{i}")
        for _ in range(2):
            login(a, "admin", "wrong-pass").expect(401)
    r = login(SourceApi(d.http_port, "127.0.0.5"), "admin", ADMIN_PASSWORD)
    r.expect(429, "too_many_attempts")
    assert int(r.headers["retry-after"]) > 60  # until the oldest failure leaves the window
    assert "LOGIN LIMIT from [127.0.0.5] limit=account" in d.log_text()
    Api(d.http_port).login("admin", ADMIN_PASSWORD)
    # Another account is not touched by admin's limit.
    login(SourceApi(d.http_port, "127.0.0.5"), "other", "wrong-pass").expect(401)


def test_smtp_global_limit_spares_known_addresses(moatd_factory):
    d = moatd_factory(auth_fail_delay="0", auth_fail_max_per_account="4",
                      login_throttle_after="2", **SUBMISSION_CONF)
    add_user(d, "alice", ["alice@example.com"], PW)
    s = smtp_tls_from(d.smtp_port, "127.0.0.1")
    assert auth_plain(s, "alice", PW)[0] == 235  # 127.0.0.1 is known-good from now on
    s.quit()
    for i in (2, 3):
        a = smtp_tls_from(d.smtp_port, f"127.0.0.{i}")
        for k in range(2):  # distinct guesses: a repeated one is answered from the cache
            assert auth_plain(a, "alice", f"guess{k}")[0] == 535
        a.quit()
    fresh = smtp_tls_from(d.smtp_port, "127.0.0.9")
    code, resp = auth_plain(fresh, "alice", PW)
    assert code == 454 and resp.startswith(b"4.7.0"), resp
    fresh.quit()
    s = smtp_tls_from(d.smtp_port, "127.0.0.1")
    assert auth_plain(s, "alice", PW)[0] == 235
    s.quit()
