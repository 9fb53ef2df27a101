"""Quarantine digests and their signed single-use links, through the real binary: a message
quarantined by a server rule over real SMTP, the digest built by moatd's periodic job and
delivered through its own queue to a real aiosmtpd downstream (parsed with Python's email
module), and the links of that digest used over real HTTP — release once, then 410; a forged
token 403; an expired one 410 (signed here with the daemon's own key file); a GET that
acts on nothing.  Also the key file, the template's validation, preview and send-now."""

import base64
import email
import email.policy
import hashlib
import hmac
import http.client
import json
import os
import re
import stat
import time

import pytest

from conftest import message, qid_of, run_moatd, default_conf
from peers_delivery import Downstream, delivery_conf, wait_for
from peers_policy import set_rules
from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401 (fixture)

EVIL_SUBJECT = 'Win <script>alert("x")</script> & more'
RULE_NAME = "hold <b>bulk</b>"


@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


def start(api_moatd, downstream, **extra):
    conf = delivery_conf(downstream.addr, digest_check="1s")
    conf.update(extra)
    d = api_moatd(**conf)
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    return d, api



def quarantine_rule(d):
    set_rules(d, [{"name": RULE_NAME,
                   "when": {"field": "header", "header": "Subject", "op": "contains",
                            "value": "Win"},
                   "action": {"type": "quarantine"}}])


def add_user(api, name, address, interval=None):
    r = api.post("/api/v1/users", {"name": name, "password": "password-xxxx",
                                   "addresses": [address]})
    r.expect(201)
    if interval is not None:
        r2 = Api(api.port)
        r2.login(name, "password-xxxx")
        r2.put("/api/v1/account/digest", {"interval": interval}).expect(200)
    return r.json["id"]


def quarantine_one(d, rcpt, sender="spammer@example.net"):
    c = d.raw()
    try:
        c.ehlo()
        reply = c.transaction(sender, [rcpt], message(subject=EVIL_SUBJECT))
        qid = qid_of(reply)
    finally:
        c.close()
    assert wait_for(lambda: d.query("SELECT id FROM quarantine WHERE qid = ?", (qid,)))
    return qid, d.query("SELECT id FROM quarantine WHERE qid = ?", (qid,))[0][0]


def digests(downstream, rcpt):
    out = []
    for m in list(downstream.messages):
        if rcpt in m["rcpt_tos"] and b"multipart/alternative" in m["content"]:
            out.append(m)
    return out


def released_copies(downstream, rcpt):
    """The quarantined message itself (not a digest) as delivered to rcpt."""
    return [m for m in list(downstream.messages) if rcpt in m["rcpt_tos"]
            and EVIL_SUBJECT.encode() in m["content"]
            and b"multipart/alternative" not in m["content"]]


def write_conf(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


def parse_digest(m):
    msg = email.message_from_bytes(m["content"], policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p.get_content() for p in msg.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}, parts.keys()
    return msg, parts["text/plain"], parts["text/html"]


def links(text, base):
    return re.findall(re.escape(base) + r"/q/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", text)


def page(port, method, token):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, "/q/" + token,
                     headers={"Content-Type": "application/x-www-form-urlencoded"}
                     if method == "POST" else {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


def decode_payload(token):
    p = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


def sign(key, payload):
    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return b64(raw) + "." + b64(hmac.new(key, raw, hashlib.sha256).digest())


def test_digest_through_the_queue_and_links_act_once(api_moatd, downstream):
    d, api = start(api_moatd, downstream)
    quarantine_rule(d)
    add_user(api, "alice", "alice@example.org", interval="hourly")
    qid, item = quarantine_one(d, "alice@example.org")
    # The periodic job finds alice due and queues her digest; the queue delivers it.
    assert wait_for(lambda: digests(downstream, "alice@example.org"), timeout=20), \
        d.log_text()[-3000:]
    m = digests(downstream, "alice@example.org")[0]
    assert m["mail_from"] in ("", "<>")  # the null sender, like a DSN
    msg, text, html = parse_digest(m)
    assert msg["To"].addresses[0].addr_spec == "alice@example.org"
    # From: the postmaster, here postmaster@ the first local domain.
    assert msg["From"].addresses[0].addr_spec == "postmaster@example.org"
    assert msg["Auto-Submitted"] == "auto-generated"
    # Every value appears, escaped in the HTML part and as is in the text part.
    assert EVIL_SUBJECT in text and "spammer@example.net" in text
    assert "<script>" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in html
    assert "<b>bulk</b>" not in html and "&lt;b&gt;bulk&lt;/b&gt;" in html
    base = f"http://127.0.0.1:{d.http_port}"
    tl, hl = links(text, base), links(html, base)
    assert len(tl) == 3 and sorted(tl) == sorted(hl), (tl, hl)
    by_action = {decode_payload(t)["a"]: t for t in tl}
    assert set(by_action) == {"release", "delete", "allow"}
    assert all(decode_payload(t)["i"] == item for t in tl)
    # The digest remembers when it was sent; the next round sends nothing new.
    assert d.query("SELECT digest_last_at IS NOT NULL FROM dir_user WHERE name = 'alice'") == [(1,)]

    rel = by_action["release"]
    # GET shows a confirmation page with a form, under a strict CSP, and acts on nothing.
    status, hdrs, body = page(d.http_port, "GET", rel)
    assert status == 200 and '<form method="post">' in body and "<script" not in body
    assert "script-src" not in hdrs["content-security-policy"]
    assert "default-src 'none'" in hdrs["content-security-policy"]
    assert "&lt;script&gt;" in body
    assert d.query("SELECT count(*) FROM quarantine WHERE id = ?", (item,)) == [(1,)]
    assert not released_copies(downstream, "alice@example.org")

    # POST releases once: the message itself reaches the downstream.
    status, _, body = page(d.http_port, "POST", rel)
    assert status == 200 and "Released" in body, body
    assert wait_for(lambda: released_copies(downstream, "alice@example.org"))
    released = released_copies(downstream, "alice@example.org")[0]
    assert released["rcpt_tos"] == ["alice@example.org"]
    assert EVIL_SUBJECT.encode() in released["content"]
    assert d.query("SELECT count(*) FROM quarantine WHERE id = ?", (item,)) == [(0,)]
    ev = d.query("SELECT actor, detail FROM message_event WHERE qid = ? AND event = 'digest.link'",
                 (qid,))
    assert ev == [("link:alice@example.org", '{"action":"release"}')], ev
    # A second POST on the same link: 410, and nothing more is delivered.
    status, _, body = page(d.http_port, "POST", rel)
    assert status == 410 and "already been used" in body
    # The item is gone: the other links of the digest now answer 404.
    status, _, _ = page(d.http_port, "POST", by_action["delete"])
    assert status == 404
    # The queue holds nothing more for alice: the message was released exactly once.
    assert d.query("SELECT count(*) FROM queue_rcpt WHERE rcpt = 'alice@example.org'"
                   " AND state IN ('queued', 'deferred')") == [(0,)]
    assert len(released_copies(downstream, "alice@example.org")) == 1


def test_forged_expired_and_tampered_links(api_moatd, downstream):
    d, api = start(api_moatd, downstream)
    quarantine_rule(d)
    uid = add_user(api, "bob", "bob@example.org")
    qid, item = quarantine_one(d, "bob@example.org")
    key_path = d.data_dir / "secrets" / "link.key"
    key = key_path.read_bytes()
    assert len(key) == 32 and stat.S_IMODE(key_path.stat().st_mode) == 0o600
    good = {"r": "bob@example.org", "u": uid, "i": item, "a": "delete",
            "x": int(time.time()) + 600, "n": "ab" * 16}
    # Expired, but genuinely signed: 410 on GET and POST, and the item stays.
    expired = sign(key, dict(good, x=int(time.time()) - 5))
    assert page(d.http_port, "GET", expired)[0] == 410
    status, _, body = page(d.http_port, "POST", expired)
    assert status == 410 and "expired" in body
    # Signed with another key, a changed payload, garbage: 403.
    assert page(d.http_port, "POST", sign(b"k" * 32, good))[0] == 403
    t = sign(key, good)
    p, s = t.split(".")
    tampered = sign(key, dict(good, i=item + 1)).split(".")[0] + "." + s
    assert page(d.http_port, "POST", tampered)[0] == 403
    assert page(d.http_port, "POST", "not-a-token")[0] == 403
    assert page(d.http_port, "GET", "x" * 3000)[0] in (403, 404, 414)
    assert d.query("SELECT count(*) FROM quarantine WHERE id = ?", (item,)) == [(1,)]
    # Someone else's item with bob's scope: 404, never acting.
    add_user(api, "carol", "carol@example.org")
    _, other = quarantine_one(d, "carol@example.org")
    status, _, _ = page(d.http_port, "POST", sign(key, dict(good, i=other, n="cd" * 16)))
    assert status == 404
    assert d.query("SELECT count(*) FROM quarantine WHERE id = ?", (other,)) == [(1,)]
    # The genuine link deletes, once.
    status, _, body = page(d.http_port, "POST", t)
    assert status == 200 and "Deleted" in body
    assert d.query("SELECT count(*) FROM quarantine WHERE id = ?", (item,)) == [(0,)]
    assert page(d.http_port, "POST", t)[0] == 410
    assert d.query("SELECT count(*) FROM digest_link_used") == [(1,)]


def test_allow_link_adds_the_sender_to_the_personal_list(api_moatd, downstream):
    d, api = start(api_moatd, downstream)
    quarantine_rule(d)
    uid = add_user(api, "dave", "dave@example.org", interval="none")
    qid, item = quarantine_one(d, "dave@example.org", sender="friend@example.net")
    r = api.post("/api/v1/quarantine/digest/send", {"user": "dave"})
    r.expect(200)
    assert r.json["items"] == 1 and re.fullmatch(r"[0-9a-f]{16}", r.json["qid"])
    assert wait_for(lambda: digests(downstream, "dave@example.org"))
    _, text, _ = parse_digest(digests(downstream, "dave@example.org")[0])
    allow = [t for t in links(text, f"http://127.0.0.1:{d.http_port}")
             if decode_payload(t)["a"] == "allow"][0]
    status, _, body = page(d.http_port, "POST", allow)
    assert status == 200, body
    assert d.query("SELECT kind, value FROM user_sender_list WHERE user_id = ?", (uid,)) == \
        [("allow", "friend@example.net")]
    assert wait_for(lambda: released_copies(downstream, "dave@example.org"))


def test_template_validation_preview_and_interval(api_moatd, downstream):
    d, api = start(api_moatd, downstream)
    quarantine_rule(d)
    add_user(api, "erin", "erin@example.org", interval="none")
    quarantine_one(d, "erin@example.org")
    t = api.get("/api/v1/quarantine/digest/template").expect(200).json
    assert "{{items}}" in t["text"] and "{{items}}" in t["html"]
    bad = dict(t, html=t["html"] + "{{unsubscribe}}")
    api.put("/api/v1/quarantine/digest/template", bad).expect(422, "invalid_value", "html")
    api.put("/api/v1/quarantine/digest/template",
            dict(t, subject="{{items}}")).expect(422, "invalid_value", "subject")
    api.put("/api/v1/quarantine/digest/template",
            dict(t, text="open {{user")).expect(422, "invalid_value", "text")
    api.put("/api/v1/quarantine/digest/template", dict(t, text=None)).expect(422, field="text")
    new = {"subject": "Held for {{ user }}: {{count}}", "text": "T {{items}} {{console}}",
           "html": "<p>H {{user}}</p>{{items}}"}
    api.put("/api/v1/quarantine/digest/template", new).expect(200)
    assert api.get("/api/v1/quarantine/digest/template").json == new
    p = api.post("/api/v1/quarantine/digest/preview", {"user": "erin"}).expect(200).json
    assert p["subject"] == "Held for erin: 1" and p["items"] == 1
    assert "&lt;script&gt;" in p["html"] and "/q/preview" in p["html"]
    assert "/my/quarantine" in p["text"]
    api.post("/api/v1/quarantine/digest/preview", {"user": "nobody"}).expect(
        422, "invalid_value", "user")
    api.post("/api/v1/quarantine/digest/send", {"user": "nobody"}).expect(
        422, "invalid_value", "user")
    # A user changes their own interval; a bad value names the field; users cannot edit
    # the template.
    u = Api(d.http_port)
    u.login("erin", "password-xxxx")
    assert u.get("/api/v1/account/digest").expect(200).json == {"interval": "none"}
    u.put("/api/v1/account/digest", {"interval": "monthly"}).expect(422, "invalid_value",
                                                                    "interval")
    u.put("/api/v1/account/digest", {"interval": "weekly"}).expect(200)
    assert d.query("SELECT digest_interval FROM dir_user WHERE name = 'erin'") == [("weekly",)]
    u.get("/api/v1/quarantine/digest/template").expect(403)
    # Sent now, with the new template's subject.
    api.post("/api/v1/quarantine/digest/send", {"user": "erin"}).expect(200)
    assert wait_for(lambda: digests(downstream, "erin@example.org"))
    msg, _, _ = parse_digest(digests(downstream, "erin@example.org")[0])
    assert msg["Subject"] == "Held for erin: 1"


def test_link_key_is_kept_and_checked(api_moatd, downstream, tmp_path):
    d, api = start(api_moatd, downstream)
    key_path = d.data_dir / "secrets" / "link.key"
    key = key_path.read_bytes()
    d.stop()
    d2 = api_moatd(data_dir=d.data_dir, **delivery_conf(downstream.addr))
    assert key_path.read_bytes() == key
    d2.stop()
    conf = default_conf(tmp_path / "w")
    conf["data_dir"] = str(d.data_dir)
    cf = write_conf(tmp_path / "moatd.conf", [f"{k} = {v}" for k, v in conf.items()])
    os.chmod(key_path, 0o644)
    p = run_moatd(["-c", cf])
    assert p.returncode == 1 and "link.key" in p.stderr and "chmod 600" in p.stderr, p.stderr
    os.chmod(key_path, 0o600)
    key_path.write_bytes(b"short")
    p = run_moatd(["-c", cf])
    assert p.returncode == 1 and "exactly 32" in p.stderr, p.stderr
