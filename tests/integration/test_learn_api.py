"""Teaching the statistical filter through the API, against the real binary: SpamAssassin
corpus messages learned with POST /api/v1/learn, a quarantine item learned by the
administrator and by its owner (into the global model and the owner's own), spam released
from the quarantine learned as ham, a message log entry learned while its content is kept
and 409 once it is not, the counts and the generation in GET /api/v1/bayes, and the running
daemon loading the models again when learning moves the generation (its `policy loaded ...
bayes=N` line). Every bad input gets a 4xx JSON error naming the field."""

import random
import re
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, qid_of, wait_for
from peers_delivery import Downstream, delivery_conf
from peers_policy import set_rules
from api_client import ADMIN_PASSWORD, Api, api_moatd, raw_http  # noqa: F401 (fixture)
from test_content_rules import deliver


@pytest.fixture(scope="module")
def corpus():
    p = subprocess.run([str(REPO / "scripts" / "corpus.sh")], capture_output=True, text=True,
                       timeout=300)
    if p.returncode != 0:
        pytest.skip("SpamAssassin corpus not available (scripts/corpus.sh)")
    root = Path(p.stdout.strip())
    rnd = random.Random(15)
    out = {}
    for cls, dirs in (("spam", ("spam-1", "spam-2")), ("ham", ("easy-ham-1", "easy-ham-2"))):
        files = sorted(f for d in dirs for f in (root / d).glob("*.txt"))
        rnd.shuffle(files)
        out[cls] = files
    return out


def raw(path):
    """A corpus file as a message: without its mbox "From " line, CRLF line ends."""
    b = Path(path).read_bytes()
    if b.startswith(b"From "):
        b = b.split(b"\n", 1)[1]
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def learn(api, msg, cls, user=None):
    q = f"/api/v1/learn?class={cls}" + (f"&user={user}" if user else "")
    return api.post(q, raw=msg, content_type="message/rfc822")


def bayes(api):
    r = api.get("/api/v1/bayes")
    r.expect(200)
    return r.json


def model(b, uid=0):
    return next((m for m in b["models"] if m["user_id"] == uid), None)


@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


@pytest.fixture
def d(api_moatd, downstream):
    return api_moatd(**delivery_conf(downstream.addr))


def admin(d):
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    return api


def test_learn_raw_messages_outcomes_and_counts(d, corpus):
    api = admin(d)
    b0 = bayes(api)
    assert b0["models"] == [] and b0["min_learned"] == 200
    g0 = b0["generation"]
    assert b0["store_bytes"] > 0
    spam = [raw(f) for f in corpus["spam"][:6]]
    ham = [raw(f) for f in corpus["ham"][:6]]
    for m in spam:
        r = learn(api, m, "spam")
        r.expect(200)
        assert r.json == {"class": "spam", "outcome": "learned"}, r
    for m in ham:
        learn(api, m, "ham").expect(200)
    b = bayes(api)
    g = model(b)
    assert (g["spam"], g["ham"], g["learned"]) == (6, 6, 12), b
    assert g["tokens"] > 1000 and g["user"] is None
    assert b["generation"] == g0 + 12, b  # one flush each
    # Again as the same class: nothing changes, the generation neither.
    assert learn(api, spam[0], "spam").json["outcome"] == "already"
    assert bayes(api)["generation"] == g0 + 12
    # As the other class: moved; forgotten; forgetting twice is "not learned".
    assert learn(api, spam[0], "ham").json["outcome"] == "moved"
    assert (model(bayes(api))["spam"], model(bayes(api))["ham"]) == (5, 7)
    assert learn(api, spam[0], "forget").json["outcome"] == "forgotten"
    assert learn(api, spam[0], "forget").json["outcome"] == "not learned"
    g = model(bayes(api))
    assert (g["spam"], g["ham"], g["learned"]) == (5, 6, 11)
    # The same copy with LF line ends is the same message.
    lf = spam[1].replace(b"\r\n", b"\n")
    assert learn(api, lf, "spam").json["outcome"] == "already"

    # Into a user's own model only.
    api.post("/api/v1/users", {"name": "usera", "password": "usera-pass-1",
                               "addresses": ["a@example.org"]}).expect(201)
    r = learn(api, spam[2], "spam", user="usera")
    r.expect(200)
    assert r.json["outcome"] == "learned" and r.json["user"] == "usera"
    u = model(bayes(api), r.json["user_id"])
    assert (u["user"], u["spam"], u["ham"]) == ("usera", 1, 0)
    assert model(bayes(api))["spam"] == 5

    # Bad input: each names what is wrong.
    learn(api, spam[3], "eggs").expect(422, field="class")
    api.post("/api/v1/learn", raw=spam[3], content_type="message/rfc822").expect(
        400, field="class")
    learn(api, b"", "spam").expect(400, field="body")
    learn(api, spam[3], "spam", user="nobody").expect(404, field="user")
    api.post("/api/v1/learn?class=spam", raw=spam[3], content_type="text/plain").expect(415)
    api.post("/api/v1/learn?class=spam&colour=red", raw=spam[3],
             content_type="message/rfc822").expect(422, field="colour")
    # A message over rules_max_body (16M) is refused before it is read.
    tok = api.create_token("learn-t", scope="admin")["token"]
    out = raw_http(d.http_port, (
        "POST /api/v1/learn?class=spam HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {tok}\r\nContent-Type: message/rfc822\r\n"
        f"Content-Length: {17 * 1024 * 1024}\r\n\r\n").encode())
    assert out.startswith(b"HTTP/1.1 413") and b"body_too_large" in out, out[:300]
    # Administrators only.
    user = Api(d.http_port)
    user.login("usera", "usera-pass-1")
    learn(user, spam[3], "spam").expect(403)
    user.get("/api/v1/bayes").expect(403)
    assert model(bayes(api))["spam"] == 5


def quarantine_spam_rule(d):
    set_rules(d, [{"name": "offers",
                   "when": {"field": "header", "op": "contains", "value": "offer",
                            "header": "Subject"},
                   "action": {"type": "quarantine", "kind": "spam"}}])


def with_subject(msg, subject):
    head, body = msg.split(b"\r\n\r\n", 1)
    lines = [l for l in head.split(b"\r\n") if not l.lower().startswith(b"subject:")]
    return b"\r\n".join([b"Subject: " + subject.encode()] + lines) + b"\r\n\r\n" + body


def test_quarantine_learn_admin_and_owner_and_release_learns_ham(d, corpus, downstream):
    api = admin(d)
    ua = api.post("/api/v1/users", {"name": "usera", "password": "usera-pass-1",
                                    "addresses": ["a@example.org"]}).expect(201).json
    quarantine_spam_rule(d)
    m1 = with_subject(raw(corpus["spam"][10]), "An offer one")
    m2 = with_subject(raw(corpus["ham"][10]), "An offer two")
    q1 = qid_of(deliver(d, ["a@example.org"], m1))
    q2 = qid_of(deliver(d, ["a@example.org"], m2))
    i1 = d.query("SELECT id FROM quarantine WHERE qid = ?", (q1,))[0][0]
    i2 = d.query("SELECT id FROM quarantine WHERE qid = ?", (q2,))[0][0]

    # The administrator: into the global model.
    r = api.post(f"/api/v1/quarantine/{i1}/learn", {"class": "spam"})
    r.expect(200)
    assert r.json == {"class": "spam", "outcome": "learned"}
    assert api.post(f"/api/v1/quarantine/{i1}/learn", {"class": "spam"}).json["outcome"] == \
        "already"
    api.post(f"/api/v1/quarantine/{i1}/learn", {"class": "junk"}).expect(422, field="class")
    api.post(f"/api/v1/quarantine/{i1}/learn", {}).expect(422, field="class")
    api.post(f"/api/v1/quarantine/{i1}/learn", {"class": "spam", "x": 1}).expect(
        422, field="x")
    api.post("/api/v1/quarantine/999999/learn", {"class": "spam"}).expect(404)
    g = model(bayes(api))
    assert (g["spam"], g["ham"]) == (1, 0)

    # The owner: into the global model and their own.
    user = Api(d.http_port)
    user.login("usera", "usera-pass-1")
    r = user.post(f"/api/v1/quarantine/{i2}/learn", {"class": "spam"})
    r.expect(200)
    assert r.json == {"class": "spam", "outcome": "learned", "user_id": ua["id"],
                      "user_outcome": "learned"}
    b = bayes(api)
    assert (model(b)["spam"], model(b, ua["id"])["spam"]) == (2, 1)
    # Someone else's item is not found.
    api.post("/api/v1/users", {"name": "userb", "password": "userb-pass-1",
                               "addresses": ["b@example.org"]}).expect(201)
    other = Api(d.http_port)
    other.login("userb", "userb-pass-1")
    other.post(f"/api/v1/quarantine/{i2}/learn", {"class": "ham"}).expect(404)

    # The owner releases item 2 (spam kind): learned as ham, in both models (moved).
    gen = bayes(api)["generation"]
    user.post("/api/v1/quarantine/release", {"ids": [i2]}).expect(200)
    downstream.wait_for(1)
    b = bayes(api)
    assert (model(b)["spam"], model(b)["ham"]) == (1, 1), b
    assert (model(b, ua["id"])["spam"], model(b, ua["id"])["ham"]) == (0, 1), b
    assert b["generation"] > gen
    assert wait_for(lambda: "learn release class=ham messages=1" in d.log_text())

    # Off: releasing item 1 teaches nothing.
    api.put("/api/v1/policy/settings/bayes_learn_on_release", {"value": "no"}).expect(200)
    api.post("/api/v1/quarantine/release", {"ids": [i1]}).expect(200)
    downstream.wait_for(2)
    b = bayes(api)
    assert (model(b)["spam"], model(b)["ham"]) == (1, 1), b
    # A released item is no longer in the quarantine.
    api.post(f"/api/v1/quarantine/{i1}/learn", {"class": "ham"}).expect(404)


def test_a_release_from_the_command_line_learns_ham_too(d, corpus, downstream):
    """Every release path goes through quarantine_admin_apply: `moatd quarantine release`
    (and a digest link) learn released spam as ham like the API does."""
    from conftest import run_moatd
    api = admin(d)
    quarantine_spam_rule(d)
    q = qid_of(deliver(d, ["a@example.org"], with_subject(raw(corpus["ham"][30]), "An offer")))
    item = d.query("SELECT id FROM quarantine WHERE qid = ?", (q,))[0][0]
    p = run_moatd(["quarantine", "--data-dir", d.data_dir, "release", "--id", item])
    assert p.returncode == 0, p.stderr
    downstream.wait_for(1)
    b = bayes(api)
    assert (model(b)["spam"], model(b)["ham"]) == (0, 1), b


def test_message_log_learn_while_content_is_kept(d, corpus, downstream):
    api = admin(d)
    quarantine_spam_rule(d)
    kept = qid_of(deliver(d, ["a@example.org"], with_subject(raw(corpus["spam"][20]),
                                                             "An offer")))
    gone = qid_of(deliver(d, ["a@example.org"], raw(corpus["ham"][20])))
    downstream.wait_for(1)
    assert wait_for(lambda: not (d.data_dir / "spool" / "queue" / gone).exists(), timeout=5)
    ids = {r["qid"]: r["id"] for r in d.log_rows("qid IN (?, ?)", (kept, gone), want=2)}
    assert set(ids) == {kept, gone}, ids
    r = api.post(f"/api/v1/messages/{ids[kept]}/learn", {"class": "spam"})
    r.expect(200)
    assert r.json["outcome"] == "learned"
    api.post(f"/api/v1/messages/{ids[gone]}/learn", {"class": "ham"}).expect(409, field="id")
    api.post("/api/v1/messages/99999999/learn", {"class": "ham"}).expect(404)
    api.post(f"/api/v1/messages/{ids[kept]}/learn", {"class": "bogus"}).expect(
        422, field="class")
    assert (model(bayes(api))["spam"], model(bayes(api))["ham"]) == (1, 0)


def test_generation_reaches_the_running_daemon(d, corpus):
    api = admin(d)
    g0 = bayes(api)["generation"]
    for f in corpus["spam"][30:33]:
        learn(api, raw(f), "spam").expect(200)
    learn(api, raw(corpus["ham"][30]), "ham").expect(200)
    gen = bayes(api)["generation"]
    assert gen == g0 + 4
    # Without any policy change the watcher loads the models at the new generation.
    assert wait_for(lambda: re.search(rf"policy loaded generation=\d+ .* bayes={gen}\b",
                                      d.log_text()), timeout=10), d.log_text()[-2000:]


SPINE = (REPO / "daemon" / "policy" / "policy_content.c")


@pytest.mark.skipif("score_models_for" not in SPINE.read_text(),
                    reason="the score spine does not use the models yet")
def test_learned_models_score_mail_over_smtp(api_moatd, corpus, downstream):
    """200 + 200 corpus messages learned through the API; a held-out spam sent over SMTP
    from outside is delivered with an X-Moat-Score header whose BAYES part is positive."""
    conf = delivery_conf(downstream.addr)
    # From outside (loopback is not a relay network here), and neither greylisted nor
    # quarantined: the message is delivered with its score.
    conf["seed_policy"] = conf["seed_policy"] + [
        ("remove", "relay_net", "127.0.0.0/8"), ("set", "score_refuse", "1000"),
        ("set", "score_quarantine", "999"), ("set", "score_greylist", "998")]
    d = api_moatd(**conf)
    api = admin(d)
    for f in corpus["spam"][100:300]:
        learn(api, raw(f), "spam").expect(200)
    for f in corpus["ham"][100:300]:
        learn(api, raw(f), "ham").expect(200)
    g = model(bayes(api))
    assert (g["spam"], g["ham"]) == (200, 200)
    gen = bayes(api)["generation"]
    assert wait_for(lambda: re.search(rf"bayes={gen}\b", d.log_text()), timeout=30)
    spam = raw(corpus["spam"][400])
    r = deliver(d, ["a@example.org"], spam)
    assert r.code == 250, r
    downstream.wait_for(1)
    content = downstream.messages[0]["content"]
    head = content.split(b"\r\n\r\n", 1)[0].replace(b"\r\n\t", b" ").replace(b"\r\n ", b" ")
    score = [l for l in head.split(b"\r\n") if l.lower().startswith(b"x-moat-score:")]
    assert score, head.decode(errors="replace")
    m = re.search(rb"BAYES[=: (]*(-?[0-9.]+)", score[0])
    assert m and float(m.group(1)) > 0, score[0]
