"""Account alerts and the administrator's actions (docs/submission.md, "Alerts" and
"Actions"): a suspension - made by the API or by the engine - sends an e-mail through moatd's
own queue to a real downstream (aiosmtpd) and a signed webhook to a local HTTP receiver;
lift (keep, release, delete), suspend now, trust until a date; the answers to bad bodies; and
every /api/v1/accounts route against api/openapi.yaml."""

import email
import email.policy
import hashlib
import hmac
import json
import random
import smtplib
import string
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import api_client
from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401
from conftest import message, wait_for
from peers_delivery import Downstream, delivery_conf
from submission_util import SUBMISSION_CONF, add_user, moatd_cli, smtp_tls

SECRET = "webhook-secret-0123456789"


class Receiver:
    """A webhook receiver on 127.0.0.1: records (headers, body) and answers from `codes`
    (one per request, the last one repeats)."""

    def __init__(self, codes=(200,)):
        self.codes = list(codes)
        self.got = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with owner.lock:
                    owner.got.append(({k.lower(): v for k, v in self.headers.items()}, body,
                                      self.path))
                    code = owner.codes.pop(0) if len(owner.codes) > 1 else owner.codes[0]
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/moat?x=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def verify(headers, body, secret=SECRET):
    """What a receiver does: HMAC-SHA256(secret, timestamp + "." + body), constant-time
    compare, and a recent timestamp."""
    ts = headers["x-moat-timestamp"]
    want = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body,
                                hashlib.sha256).hexdigest()
    assert hmac.compare_digest(want, headers["x-moat-signature"]), (want, headers)
    assert abs(time.time() - int(ts)) < 300
    return json.loads(body)


def alert_mails(down, rcpt):
    with down.lock:
        msgs = [m for m in down.messages if rcpt in m["rcpt_tos"]]
    return [(m, email.message_from_bytes(m["content"], policy=email.policy.default))
            for m in msgs]


def check_rfc5322(raw):
    head = raw.split(b"\r\n\r\n", 1)[0]
    for name in (b"From:", b"To:", b"Subject:", b"Date:", b"Message-ID:", b"MIME-Version:"):
        assert (b"\r\n" + name) in (b"\r\n" + head), name
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert b"\n" not in raw.replace(b"\r\n", b"")


@pytest.fixture
def world(api_moatd):
    down = Downstream().start()
    hook = Receiver(codes=(500, 200)).start()
    conf = delivery_conf(down.addr, smarthost=down.addr, local_domains=("example.com",))
    conf.update(SUBMISSION_CONF)
    conf.update(alert_webhook_retry="1s", max_sessions_per_client="50",
                account_suspend_score="5")
    d = api_moatd(**conf)
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    yield d, api, down, hook
    hook.stop()
    down.stop()


def send(d, user, password, sender, rcpts, subject):
    s = smtp_tls(d.smtp_port)
    s.login(user, password)
    s.sendmail(sender, rcpts, message(subject=subject))
    s.quit()


def mail_code(d, user, password, sender):
    """MAIL's code, or AUTH's when the login itself is refused (a suspended account)."""
    s = smtp_tls(d.smtp_port)
    try:
        s.login(user, password)
    except smtplib.SMTPAuthenticationError as e:
        s.quit()
        return e.smtp_code
    code = s.mail(sender)[0]
    s.quit()
    return code


def queue_states(d, user):
    return d.query("SELECT r.state FROM queue_rcpt r JOIN queue_message m ON m.qid = r.qid"
                   " WHERE m.auth_user = ? ORDER BY r.rcpt", (user,))


def test_manual_suspend_mail_webhook_and_lift_release(world):
    d, api, down, hook = world
    api_client.RECORDED.clear()
    add_user(d, "alice", ["alice@example.com"], "alice-password-1")
    api.put("/api/v1/policy/settings/alert_recipients", {"value": "ops@example.com"}).expect(200)
    api.put("/api/v1/policy/settings/alert_webhook_url", {"value": hook.url}).expect(200)
    api.put("/api/v1/policy/settings/alert_webhook_secret", {"value": SECRET}).expect(200)
    api.put("/api/v1/policy/settings/alert_webhook_url", {"value": "ftp://x"}).expect(
        422, field="value")

    # two messages the remote defers: they stay in the queue
    down.replies["far1@remote.example"] = "451 4.3.0 later"
    down.replies["far2@remote.example"] = "451 4.3.0 later"
    send(d, "alice", "alice-password-1", "alice@example.com", ["far1@remote.example"], "held one")
    send(d, "alice", "alice-password-1", "alice@example.com", ["far2@remote.example"], "held two")
    assert wait_for(lambda: queue_states(d, "alice") == [("deferred",), ("deferred",)], timeout=10)

    # bad bodies name the field; unknown accounts are 404
    api.post("/api/v1/accounts/alice/suspend", {"reason": "x" * 201}).expect(422, field="reason")
    api.post("/api/v1/accounts/alice/suspend", {"bogus": 1}).expect(422, field="bogus")
    api.post("/api/v1/accounts/nobody/suspend").expect(404)
    api.get("/api/v1/accounts/nobody").expect(404)
    api.post("/api/v1/accounts/alice/lift").expect(404, "not_suspended")

    acc = api.post("/api/v1/accounts/alice/suspend", {"reason": "phoned in"}).expect(200).json
    assert acc["suspended"] is True and acc["held"] == 2, acc
    assert queue_states(d, "alice") == [("held",), ("held",)]
    api.post("/api/v1/accounts/alice/suspend").expect(409)
    # the running daemon refuses the account's mail within about a second
    assert wait_for(lambda: mail_code(d, "alice", "alice-password-1", "alice@example.com") != 250,
                    timeout=5, interval=0.3)

    # the e-mail, through moatd's own queue, at the real downstream
    assert wait_for(lambda: alert_mails(down, "ops@example.com"), timeout=15)
    (raw, msg), = alert_mails(down, "ops@example.com")
    assert raw["mail_from"] == "<>" or raw["mail_from"] == ""  # the null sender, like a DSN
    check_rfc5322(raw["content"])
    assert msg["Subject"].startswith("[moat] account alice suspended (score ")
    assert "MAILER-DAEMON@" in msg["From"]
    text = msg.get_body(("plain",)).get_content()
    assert "The account alice was suspended" in text and "Suspended by admin" in text
    assert "Held: 2 queued recipients" in text
    assert "held one" in text and "held two" in text and "far1@remote.example" in text
    qids = [q for q, in d.query("SELECT m.qid FROM queue_message m WHERE m.auth_user='alice'")]
    assert all(q in text for q in qids), (qids, text)
    assert "/queue?state=held&auth_user=alice" in text and "/accounts/alice" in text

    # the webhook: 500 first, then a retry that is accepted; both signed
    assert wait_for(lambda: len(hook.got) >= 2, timeout=15)
    bodies = [verify(h, b) for h, b, _ in hook.got[:2]]
    assert hook.got[0][2] == "/hooks/moat?x=1"
    assert hook.got[0][1] == hook.got[1][1]  # the same alert, re-signed
    alert = bodies[0]
    assert alert["event"] == "account.suspended" and alert["user"] == "alice"
    assert alert["held"] == 2 and alert["actor"] == "admin" and len(alert["samples"]) == 2
    assert "ALERT WEBHOOK FAILED" in d.log_text()
    assert "sha256=" in hook.got[0][0]["x-moat-signature"]
    with pytest.raises(AssertionError):  # a wrong secret does not verify
        verify(hook.got[0][0], hook.got[0][1], secret="another-secret-value")

    # the alert, seen by the API, marked as notified
    got = wait_for(lambda: api.get(f"/api/v1/accounts/alerts/{alert['id']}").expect(200).json
                   if api.get(f"/api/v1/accounts/alerts/{alert['id']}").json["notified"]
                   else None, timeout=5)
    assert got["kind"] == "suspended" and got["actor"] == "admin"
    lst = api.get("/api/v1/accounts/alerts?user=alice&kind=suspended").expect(200).json
    assert [a["id"] for a in lst["items"]] == [alert["id"]]
    api.get("/api/v1/accounts/alerts/999999").expect(404)
    api.get("/api/v1/accounts/alerts?kind=bogus").expect(422, field="kind")

    # lift and release: the held messages reach the downstream
    api.post("/api/v1/accounts/alice/lift", {"held": "bogus"}).expect(422, field="held")
    api.post("/api/v1/accounts/alice/lift", {"held": 3}).expect(422, field="held")
    down.replies.clear()
    r = api.post("/api/v1/accounts/alice/lift", {"held": "release"}).expect(200).json
    assert r == {"user": "alice", "suspended": False, "released": 2, "deleted": 0}
    down.wait_for(3, timeout=20)
    assert {"far1@remote.example", "far2@remote.example"} <= set(down.rcpts())
    lifted = api.get("/api/v1/accounts/alerts?user=alice&kind=lifted").json["items"][0]
    assert lifted["action"] == "release" and lifted["actor"] == "admin"
    audit = {a for a, in d.query("SELECT action FROM api_audit")}
    assert {"account.suspend", "account.lift", "queue.hold", "queue.release"} <= audit
    # the lift is announced to the webhook too (no mail)
    assert wait_for(lambda: [b for h, b, _ in hook.got
                             if verify(h, b)["event"] == "account.lifted"], timeout=10)
    assert len(alert_mails(down, "ops@example.com")) == 1


def test_automatic_suspension_alert_and_lift_delete(world):
    d, api, down, hook = world
    # no webhook, no alert_recipients: the mail goes to the postmaster
    add_user(d, "bob", ["bob@example.com"], "bob-password-1")
    down.replies["victim@remote.example"] = "451 4.3.0 later"
    send(d, "bob", "bob-password-1", "bob@example.com", ["victim@remote.example"], "bot spam 1")
    assert wait_for(lambda: queue_states(d, "bob") == [("deferred",)], timeout=10)
    s = smtp_tls(d.smtp_port)
    s.login("bob", "bob-password-1")
    for _ in range(30):
        rnd = "".join(random.choice(string.ascii_lowercase) for _ in range(8))
        code = s.mail(f"{rnd}@{rnd}.example")[0]
        s.rset()
        if code == 550:
            break
    else:
        pytest.fail("the account was never suspended")
    s.quit()
    pm = "postmaster@example.com"
    assert wait_for(lambda: alert_mails(down, pm), timeout=15)
    (raw, msg), = alert_mails(down, pm)
    check_rfc5322(raw["content"])
    assert msg["Subject"].startswith("[moat] account bob suspended (score ")
    text = msg.get_body(("plain",)).get_content()
    assert "Suspended automatically" in text and "Why" in text
    assert "Held: 1 queued recipients" in text and "bot spam 1" in text
    assert queue_states(d, "bob") == [("held",)]
    # the alert row: notified, and no webhook configured
    row = d.query("SELECT notified, actor FROM account_alert WHERE user='bob'")[0]
    assert row[0] > 0 and row[1] == "moatd"
    assert hook.got == []

    # lift and delete, from the CLI: the held message is gone, with audit rows
    r = moatd_cli(d, "accounts", "lift", "bob", "--delete")
    assert r.returncode == 0 and b"deleted=1" in r.stdout, r.stderr
    assert queue_states(d, "bob") == []
    audit = {(a, actor) for a, actor in d.query("SELECT action, actor FROM api_audit")}
    assert ("queue.delete", "cli") in audit and ("account.lift", "cli") in audit
    r = moatd_cli(d, "accounts", "lift", "bob")
    assert r.returncode == 1 and b"not suspended" in r.stderr


def test_lift_release_right_after_suspension_is_not_held_again(world):
    """A suspension holds twice (at once, and 2 s later for messages that were committing);
    a lift with release inside those 2 s must not see its released mail held again."""
    d, api, down, hook = world
    add_user(d, "dora", ["dora@example.com"], "dora-password-1")
    down.replies["friend@remote.example"] = "451 4.3.0 later"  # stays in the queue
    send(d, "dora", "dora-password-1", "dora@example.com", ["friend@remote.example"],
         "dora real mail")
    assert wait_for(lambda: queue_states(d, "dora") == [("deferred",)], timeout=10)
    s = smtp_tls(d.smtp_port)
    s.login("dora", "dora-password-1")
    for i in range(30):
        if s.mail(f"stranger{i}@elsewhere{i}.example")[0] == 550:
            break
        s.rset()
    else:
        pytest.fail("the account was never suspended")
    s.quit()
    assert wait_for(lambda: queue_states(d, "dora") == [("held",)], timeout=10)
    r = api.post("/api/v1/accounts/dora/lift", {"held": "release"})
    assert r.status == 200 and r.json["released"] == 1, r.body
    # the hold's second pass runs 2 s after the suspension: it finds the account lifted
    assert wait_for(lambda: "account hold again user=dora recipients=0" in d.log_text(),
                    timeout=10)
    assert "ACCOUNT HELD user=dora recipients=1" in d.log_text()  # the first pass only
    assert queue_states(d, "dora") in ([("queued",)], [("deferred",)])


def test_trust_lifts_rate_limits_and_cli(world):
    d, api, down, hook = world
    add_user(d, "carol", ["carol@example.com"], "carol-password-1")
    r = moatd_cli(d, "accounts", "limits", "carol", "messages_minute=2")
    assert r.returncode == 0, r.stderr
    time.sleep(1.5)  # the account worker reads limit overrides back every second

    def burst(n):
        s = smtp_tls(d.smtp_port)
        s.login("carol", "carol-password-1")
        codes = []
        for i in range(n):
            codes.append(s.mail("carol@example.com")[0])
            s.rset()
        s.quit()
        return codes
    assert any(c != 250 for c in burst(4))  # the per-account limit applies

    # bad trust bodies name the field
    api.put("/api/v1/accounts/carol/trust", {"until": "2001-01-01T00:00:00Z"}).expect(
        422, field="until")
    api.put("/api/v1/accounts/carol/trust", {"until": "soon"}).expect(422, field="until")
    api.put("/api/v1/accounts/carol/trust", {}).expect(422, field="until")
    far = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 400 * 86400))
    api.put("/api/v1/accounts/carol/trust", {"until": far}).expect(422, field="until")
    api.put("/api/v1/accounts/nobody/trust", {"until": int(time.time() * 1000) + 60000}).expect(404)
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
    acc = api.put("/api/v1/accounts/carol/trust", {"until": until}).expect(200).json
    assert acc["trusted_until"] and acc["trusted_until"] > time.time() * 1000
    assert wait_for(lambda: all(c == 250 for c in burst(6)), timeout=8, interval=1.0)
    alerts = api.get("/api/v1/accounts/alerts?user=carol&kind=trusted").json["items"]
    assert alerts and alerts[0]["notified"] is None and alerts[0]["actor"] == "admin"
    listed = api.get("/api/v1/accounts?trusted=true").json["items"]
    assert [a["user"] for a in listed] == ["carol"]
    acc = api.delete("/api/v1/accounts/carol/trust").expect(200).json
    assert acc["trusted_until"] is None
    n_alerts = len(api.get("/api/v1/accounts/alerts?user=carol").json["items"])
    api.delete("/api/v1/accounts/carol/trust").expect(404, "not_trusted")  # nothing to end
    assert len(api.get("/api/v1/accounts/alerts?user=carol").json["items"]) == n_alerts

    # the CLI: trust, show, list --sort, suspend, lift (keep)
    r = moatd_cli(d, "accounts", "trust", "carol", "--until", until)
    assert r.returncode == 0 and b"trusted carol" in r.stdout, r.stderr
    r = moatd_cli(d, "accounts", "trust", "carol", "--until", "yesterday")
    assert r.returncode == 1 and b"expected a date" in r.stderr, r.stderr
    r = moatd_cli(d, "accounts", "trust", "carol", "--until", "2020-01-01")
    assert r.returncode == 1 and b"must be in the future" in r.stderr, r.stderr
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 3 * 86400))
    r = moatd_cli(d, "accounts", "trust", "carol", "--until", day)  # to the end of that day
    assert r.returncode == 0, r.stderr
    (t_until,), = d.query("SELECT trusted_until FROM account_state WHERE user = 'carol'")
    assert time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t_until // 1000)) == day + "T23:59:59"
    assert moatd_cli(d, "accounts", "trust", "carol", "--clear").returncode == 0
    r = moatd_cli(d, "accounts", "suspend", "carol", "--reason", "on holiday")
    assert r.returncode == 0 and r.stdout.startswith(b"suspended carol"), r.stderr
    r = moatd_cli(d, "accounts", "suspend", "carol")
    assert r.returncode == 1 and b"already suspended" in r.stderr
    assert moatd_cli(d, "accounts", "suspend", "ghost").returncode == 1
    r = moatd_cli(d, "accounts", "show", "carol")
    assert r.returncode == 0 and b"carol\t" in r.stdout and b"\tsuspended\t" in r.stdout \
        and b"by=cli" in r.stdout and b"held\t" in r.stdout, r.stdout
    r = moatd_cli(d, "accounts", "list", "--sort", "volume")
    assert r.returncode == 0 and b"carol\t" in r.stdout and b"volume_day=" in r.stdout
    assert moatd_cli(d, "accounts", "list", "--sort", "bogus").returncode == 2
    r = moatd_cli(d, "accounts", "list", "--suspended", "--sort", "score")
    assert r.returncode == 0 and r.stdout.startswith(b"carol\t")
    r = moatd_cli(d, "accounts", "lift", "carol")
    assert r.returncode == 0 and b"released=0 deleted=0" in r.stdout
    kinds = [k for k, in d.query("SELECT kind FROM account_alert WHERE user='carol' ORDER BY id")]
    assert kinds == ["trusted", "untrusted", "trusted", "trusted", "untrusted", "suspended",
                     "lifted"]
    # the CLI's manual suspension is mailed too (to the postmaster by default)
    assert wait_for(lambda: alert_mails(down, "postmaster@example.com"), timeout=15)


def test_accounts_routes_match_contract(world):
    """Every /api/v1/accounts route answers 2xx, and every answer validates against
    api/openapi.yaml."""
    from test_api_contract import area_routes, validate
    d, api, down, hook = world
    add_user(d, "dave", ["dave@example.com"], "dave-password-1")
    api_client.RECORDED.clear()
    send(d, "dave", "dave-password-1", "dave@example.com", ["x@remote.example"], "hello")
    api.get("/api/v1/accounts").expect(200)
    api.get("/api/v1/accounts?sort=score&order=desc&suspended=false&q=da&limit=1").expect(200)
    api.get("/api/v1/accounts?sort=bogus").expect(422, field="sort")
    api.get("/api/v1/accounts/dave").expect(200)
    api.post("/api/v1/accounts/dave/suspend").expect(200)
    a = api.get("/api/v1/accounts/alerts").expect(200).json["items"][0]
    api.get(f"/api/v1/accounts/alerts/{a['id']}").expect(200)
    api.post("/api/v1/accounts/dave/lift").expect(200)
    until = int(time.time() * 1000) + 3600000
    api.put("/api/v1/accounts/dave/trust", {"until": until}).expect(200)
    api.delete("/api/v1/accounts/dave/trust").expect(200)
    api.get("/api/v1/queue?auth_user=dave&state=held").expect(200)
    api.get("/api/v1/queue/summary?group=state&auth_user=dave").expect(200)
    api.post("/api/v1/queue/release", {"auth_user": "dave", "state": "held"}).expect(200)
    user = Api(d.http_port)
    api.post("/api/v1/users", {"name": "uma", "password": "uma-password-1"}).expect(201)
    user.login("uma", "uma-password-1")
    user.post("/api/v1/accounts/dave/suspend").expect(403)
    seen_ok = set()
    for resp in list(api_client.RECORDED):
        template = validate(resp)
        if 200 <= resp.status < 300:
            seen_ok.add((resp.method.lower(), template))
    mine = area_routes("accounts")
    assert len(mine) == 8, sorted(mine)
    assert not mine - seen_ok, f"never answered 2xx: {sorted(mine - seen_ok)}"
