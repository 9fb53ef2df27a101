"""SMTP AUTH under a hammering client (docs/submission.md, "AUTH"): a suspended account is
refused without a password check, repeated identical credentials cost one Argon2 check (the
credential cache and coalescing), a changed password stops answering from the cache, and
ordinary users keep logging in while a bot hammers from 40 connections on their address.

The number of Argon2 checks is read from /metrics (moat_auth_checks_total)."""

import base64
import smtplib
import sqlite3
import threading
import time

from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401
from conftest import IO_TIMEOUT, wait_for
from submission_util import SUBMISSION_CONF, add_user, smtp_tls

SUSPENDED_TEXT = b"Authentication refused: account suspended; contact your administrator"


def b64(s):
    return base64.b64encode(s.encode()).decode()


def auth_plain(s, user, pw):
    return s.docmd("AUTH", "PLAIN " + b64(f"\0{user}\0{pw}"))


def metric(api, name):
    r = api.get("/metrics").expect(200)
    for line in r.body.decode().splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def checks(api):
    return metric(api, "moat_auth_checks_total")


def suspend(d, user):
    """Suspends user in the database; the daemon reads suspensions back every second."""
    now = int(time.time() * 1000)
    with sqlite3.connect(d.db_path, timeout=10) as db:
        db.execute("INSERT INTO account_state (user, suspended, reason, updated)"
                   " VALUES (?, ?, 'test', ?) ON CONFLICT(user) DO UPDATE"
                   " SET suspended = excluded.suspended, reason = excluded.reason", (user, now, now))


def user_id(d, name):
    return d.query("SELECT id FROM dir_user WHERE name = ?", (name,))[0][0]


def bot_refused(d, user="bot", pw="bot-password-1"):
    """One AUTH for the suspended user on a new session: True when refused as suspended."""
    s = plain_session(d)
    code, resp = auth_plain(s, user, pw)
    s.quit()
    assert code in (235, 535), (code, resp)  # 235 until the suspension is read back
    return code == 535 and resp.startswith(b"5.7.8") and SUSPENDED_TEXT in resp


def start(api_moatd, **conf):
    d = api_moatd(**dict(SUBMISSION_CONF, auth_allow_plaintext="yes", **conf))
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    return d, api


def plain_session(d):
    s = smtplib.SMTP("127.0.0.1", d.smtp_port, timeout=IO_TIMEOUT)
    s.ehlo("client.example")
    return s


def test_suspended_account_refused_without_check(api_moatd):
    d, api = start(api_moatd, auth_fail_delay="0")
    add_user(d, "bot", ["bot@example.com"], "bot-password-1")
    add_user(d, "alice", ["alice@example.com"], "alice-password-1")
    suspend(d, "bot")
    assert wait_for(lambda: bot_refused(d), timeout=6, interval=0.3)

    before = checks(api)
    for _ in range(5):
        s = plain_session(d)
        for _ in range(10):
            code, resp = auth_plain(s, "bot", "bot-password-1")
            assert code == 535 and SUSPENDED_TEXT in resp, (code, resp)
        s.quit()
    # The same answer whatever the password, and none of it costs a hash.
    s = plain_session(d)
    code, resp = auth_plain(s, "bot", "not-the-password")
    assert code == 535 and SUSPENDED_TEXT in resp
    s.quit()
    assert checks(api) == before
    assert metric(api, "moat_auth_suspended_total") >= 51

    # 51 refusals from 127.0.0.1 (auth_fail_max_per_addr is 10): not failures of the address.
    s = smtp_tls(d.smtp_port)
    code, resp = auth_plain(s, "alice", "alice-password-1")
    assert code == 235, (code, resp)
    s.quit()
    log = d.log_text()
    assert "AUTH SUSPENDED from [127.0.0.1]" in log
    assert "AUTH ADDRESS LIMIT" not in log
    lines = [ln for ln in log.splitlines() if "AUTH SUSPENDED" in ln]
    assert lines and not any("bot" in ln for ln in lines)
    assert "bot-password-1" not in log


def test_identical_credentials_cost_one_check(api_moatd):
    d, api = start(api_moatd, auth_fail_delay="0")
    add_user(d, "alice", ["alice@example.com"], "alice-password-1")
    add_user(d, "bob", ["bob@example.com"], "bob-password-1")

    # One after another over 20 connections: one check, then the cache.
    before = checks(api)
    hits = metric(api, "moat_auth_cache_hits_total")
    for i in range(20):
        s = plain_session(d)
        code, resp = auth_plain(s, "alice", "alice-password-1")
        assert code == 235, (code, resp)
        if i == 19:  # a cached login brings the addresses it may send as (sender binding)
            assert s.mail("alice@example.com")[0] == 250
        s.quit()
    assert checks(api) == before + 1
    assert metric(api, "moat_auth_cache_hits_total") == hits + 19
    assert "via=cache" in d.log_text()

    # 20 at the same moment (nothing cached yet): one check, the others wait for it.
    sessions = [plain_session(d) for _ in range(20)]
    before = checks(api)
    results = [None] * len(sessions)
    go = threading.Barrier(len(sessions))

    def login(i):
        go.wait(timeout=IO_TIMEOUT)
        results[i] = auth_plain(sessions[i], "bob", "bob-password-1")[0]
    threads = [threading.Thread(target=login, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for s in sessions:
        s.quit()
    assert results == [235] * len(sessions)
    assert checks(api) == before + 1


def test_identical_wrong_credentials_one_check_per_negative_ttl(api_moatd):
    d, api = start(api_moatd, auth_fail_delay="0", auth_cache_negative_ttl="2s",
                   auth_fail_max_per_addr="1000")
    add_user(d, "alice", ["alice@example.com"], "alice-password-1")

    def attempt(pw="wrong-password"):
        s = plain_session(d)  # one session a try: max_errors counts 535s per session
        code, resp = auth_plain(s, "alice", pw)
        s.quit()
        return code, resp
    before = checks(api)
    for _ in range(10):
        code, resp = attempt()
        assert code == 535 and resp.startswith(b"5.7.8"), (code, resp)
    assert checks(api) == before + 1
    # Once the negative TTL has passed, the next try is checked again, and cached again.

    def checked_again():
        assert attempt()[0] == 535
        return checks(api) == before + 2
    assert wait_for(checked_again, timeout=8, interval=0.5)
    for _ in range(5):
        assert attempt()[0] == 535
    assert checks(api) == before + 2
    # The right password is another key: checked, and it works.
    assert attempt("alice-password-1")[0] == 235
    assert checks(api) == before + 3
    # A cached failure is still a failure of the address: auth_fail_max_per_addr applies.
    assert metric(api, "moat_auth_cache_hits_total") >= 14


def test_stale_password_does_not_lock_the_address_but_guesses_do(api_moatd):
    """The same wrong password again (a PC with its owner's old password) is answered from
    the cache and counts nowhere, so the address is not locked out for everyone behind it;
    distinct wrong passwords (guessing) are real checks and do lock it."""
    d, api = start(api_moatd, auth_fail_delay="0", auth_fail_max_per_addr="5")
    add_user(d, "alice", ["alice@example.com"], "alice-password-1")
    add_user(d, "bob", ["bob@example.com"], "bob-password-1")
    before = checks(api)
    for _ in range(4):  # a new session every 5 tries: max_errors counts 535s per session
        s = plain_session(d)
        for _ in range(5):
            assert auth_plain(s, "alice", "her-old-password")[0] == 535
        s.quit()
    assert checks(api) == before + 1  # one real check, nineteen from the cache
    s = plain_session(d)
    assert auth_plain(s, "bob", "bob-password-1")[0] == 235  # same address, not locked
    s.quit()
    assert "AUTH ADDRESS LIMIT" not in d.log_text()
    s = plain_session(d)
    for i in range(4):
        assert auth_plain(s, "alice", f"guess-{i}")[0] == 535
    code, resp = s.docmd("AUTH", "PLAIN")
    assert code == 421 and resp.startswith(b"4.7.0"), (code, resp)
    assert "AUTH ADDRESS LIMIT from [127.0.0.1]" in d.log_text()


def test_authenticated_sessions_count_against_the_account(api_moatd):
    """A suspended account's bot holding many connections from one address does not take the
    places of other accounts behind that address: from AUTH on, sessions count per account."""
    d, api = start(api_moatd, max_sessions_per_client="5")
    add_user(d, "bot", ["bot@example.com"], "bot-password-1")
    add_user(d, "carol", ["carol@example.com"], "carol-password-1")
    suspend(d, "bot")
    assert wait_for(lambda: bot_refused(d), timeout=10)
    bots = []
    for _ in range(5):  # the account's five places, held after the 535
        s = plain_session(d)
        assert auth_plain(s, "bot", "bot-password-1")[0] == 535
        bots.append(s)
    s = plain_session(d)  # a sixth: its address place is free, its account has none left
    code, resp = auth_plain(s, "bot", "bot-password-1")
    assert code == 421 and b"this account" in resp, (code, resp)
    assert "ACCOUNT SESSION LIMIT from [127.0.0.1]" in d.log_text()
    # carol, on the same address, still connects and logs in
    c = plain_session(d)
    assert auth_plain(c, "carol", "carol-password-1")[0] == 235
    c.quit()
    for b in bots:
        b.close()


def test_cached_login_cleared_by_password_change_and_disable(api_moatd):
    d, api = start(api_moatd, auth_fail_delay="0", auth_fail_max_per_addr="1000")
    add_user(d, "alice", ["alice@example.com"], "alice-password-1")
    uid = user_id(d, "alice")

    def login(pw):
        s = plain_session(d)
        code = auth_plain(s, "alice", pw)[0]
        s.quit()
        return code
    before = checks(api)
    assert login("alice-password-1") == 235
    assert login("alice-password-1") == 235
    assert checks(api) == before + 1  # the second came from the cache (auth_cache_ttl 5m)

    api.patch(f"/api/v1/users/{uid}", {"password": "alice-password-2"}).expect(200)
    # Within about a second the old password no longer works (cache emptied).
    assert wait_for(lambda: login("alice-password-1") == 535, timeout=5, interval=0.3)
    assert "credential cache emptied" in d.log_text()
    assert login("alice-password-2") == 235
    assert login("alice-password-2") == 235

    api.patch(f"/api/v1/users/{uid}", {"disabled": True}).expect(200)
    assert wait_for(lambda: login("alice-password-2") == 535, timeout=5, interval=0.3)


def test_ordinary_logins_succeed_while_a_bot_hammers(api_moatd):
    """A suspended bot hammers AUTH from 40 connections on 127.0.0.1 while ordinary users on
    the same address log in afresh (STARTTLS + AUTH): every ordinary login succeeds."""
    d, api = start(api_moatd, auth_fail_delay="0", max_sessions_per_client="200")
    add_user(d, "bot", ["bot@example.com"], "bot-password-1")
    users = [f"user{i}" for i in range(5)]
    for u in users:
        add_user(d, u, [f"{u}@example.com"], f"{u}-password-1")
    suspend(d, "bot")
    assert wait_for(lambda: bot_refused(d), timeout=6, interval=0.3)
    before = checks(api)

    stop = threading.Event()
    bot_counts = {"refused": 0, "closed": 0, "other": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + 30  # bounded whatever happens

    def bot():
        c = None
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                if c is None:
                    c = plain_session(d)
                code = auth_plain(c, "bot", "bot-password-1")[0]
            except (OSError, smtplib.SMTPException):
                c = None  # closed after max_errors: the bot reconnects
                continue
            with lock:
                if code == 535:
                    bot_counts["refused"] += 1
                elif code == 421:  # max_errors reached: the session ends
                    bot_counts["closed"] += 1
                else:
                    bot_counts["other"] += 1
            if code == 421:
                c.close()
                c = None
        if c is not None:
            c.close()

    latencies = []
    failures = []

    def ordinary(u):
        for _ in range(4):
            t0 = time.monotonic()
            try:
                c = smtp_tls(d.smtp_port)
                code, resp = auth_plain(c, u, f"{u}-password-1")
                c.quit()
            except (OSError, smtplib.SMTPException) as e:
                failures.append((u, repr(e)))
                continue
            if code != 235:
                failures.append((u, code, resp))
            else:
                latencies.append(time.monotonic() - t0)

    bots = [threading.Thread(target=bot) for _ in range(40)]
    for t in bots:
        t.start()
    wait_for(lambda: bot_counts["refused"] >= 200, timeout=10)
    workers = [threading.Thread(target=ordinary, args=(u,)) for u in users]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=60)
    stop.set()
    for t in bots:
        t.join(timeout=30)

    latencies.sort()
    print(f"bot {bot_counts};"
          f" ordinary logins={len(latencies)} p50={latencies[len(latencies) // 2] * 1000:.0f}ms"
          f" max={latencies[-1] * 1000:.0f}ms" if latencies else "no ordinary login")
    assert failures == []
    assert len(latencies) == len(users) * 4
    assert bot_counts["refused"] >= 200 and bot_counts["other"] == 0
    # The bot cost no hash: only the ordinary users' first logins were checked.
    assert checks(api) - before == len(users)
    assert "AUTH ADDRESS LIMIT" not in d.log_text()
