"""The statistical filter learns for the whole cluster (docs/cluster.md, "The statistical
filter"): two real moatd nodes on one real PostgreSQL 15. SpamAssassin corpus messages
learned through node A's API reach node B as learning events: B's model goes from
untrained to A's counts, token for token, B's running daemon loads it (its `policy loaded
... bayes=G` line), and `moatd classify` on B gives a held-out spam exactly A's verdict.
A release of a spam-kind quarantine item on A (learned as ham there) moves B's model the
same way. The events stay out of PostgreSQL outside a cluster's learning and are never
applied twice to the node that made them."""

import re

from api_client import api_moatd  # noqa: F401 (fixture)
from conftest import qid_of, run_moatd, wait_for
from peers_cluster import admin, downstream, pg, start_nodes  # noqa: F401 (fixtures)
from peers_delivery import delivery_conf
from test_content_rules import deliver, subject_is
from test_learn_api import bayes, corpus, learn, model, raw, with_subject  # noqa: F401

N = 40           # corpus messages learned per class on node A
PROPAGATION_S = 15


def counts(api, uid=0):
    m = model(bayes(api), uid)
    return None if m is None else (m["spam"], m["ham"], m["tokens"], m["learned"])


def classify(d, path):
    """`moatd classify` on a node's data directory: (probability, verdict) of one file."""
    p = run_moatd(["classify", "--data-dir", d.data_dir, "--top", "0", str(path)], timeout=120)
    assert p.returncode == 0, p.stderr
    line = [l for l in p.stdout.splitlines() if l and not l.startswith("\t")][0]
    f = line.split("\t")
    return float(f[1]), f[2], p.stderr


def test_learning_on_a_trains_b(api_moatd, pg, corpus, downstream, tmp_path):
    conf = delivery_conf(downstream.addr)
    a, b = start_nodes(api_moatd, pg, 2, **conf)
    api_a, api_b = admin(a), admin(b)
    held_out = tmp_path / "held-out-spam.eml"
    held_out.write_bytes(raw(corpus["spam"][500]))

    # Before: B knows nothing.
    assert counts(api_b) is None
    prob, verdict, err = classify(b, held_out)
    assert "0 spam and 0 ham learned" in err, err

    for f in corpus["spam"][:N]:
        learn(api_a, raw(f), "spam").expect(200)
    for f in corpus["ham"][:N]:
        learn(api_a, raw(f), "ham").expect(200)
    want = counts(api_a)
    assert want[:2] == (N, N) and want[2] > 1000, want

    # B repeats every learning: the same messages, the same tokens, the same counts.
    assert wait_for(lambda: counts(api_b) == want, timeout=PROPAGATION_S), (counts(api_b), want)
    assert wait_for(lambda: "bayes applied learned=" in b.log_text(), timeout=3)
    # Token for token: the SipHash key came with the events.
    assert a.query("SELECT value FROM bayes_meta WHERE name = 'key'") == \
        b.query("SELECT value FROM bayes_meta WHERE name = 'key'")
    q = "SELECT hash, spam, ham FROM bayes_global_token ORDER BY hash"
    assert a.query(q) == b.query(q)
    # B's daemon loads the model it was given (no policy change needed).
    gen = bayes(api_b)["generation"]
    assert wait_for(lambda: re.search(rf"policy loaded generation=\d+ .* bayes={gen}\b",
                                      b.log_text()), timeout=10), b.log_text()[-2000:]

    # A held-out spam: B now says spam, exactly as A does.
    prob_b, verdict_b, _ = classify(b, held_out)
    prob_a, verdict_a, _ = classify(a, held_out)
    assert verdict_b == "spam" and prob_b > 0.9, (prob_b, verdict_b)
    assert (prob_b, verdict_b) == (prob_a, verdict_a)

    # Events are written once per learning by the node that learned; B wrote none, and
    # A's own events were not applied back to A (its counts did not double).
    assert a.query("SELECT count(*), min(origin), max(origin) FROM bayes_event") == \
        [(2 * N, 1, 1)]
    assert b.query("SELECT count(*) FROM bayes_event") == [(0,)]
    assert counts(api_a) == want
    assert pg.sql("SELECT count(*) FROM moat_row WHERE tbl = 'bayes_event'").strip() == \
        str(2 * N)

    # A release on A of a spam-kind quarantine item learns it as ham, there and on B.
    api_a.post("/api/v1/rules", {"name": "q offers", "when": subject_is("offer"),
                                 "action": {"type": "quarantine", "kind": "spam"}}).expect(201)
    pgen = a.query("SELECT generation FROM policy_meta")[0][0]
    assert wait_for(lambda: f"loaded generation={pgen}" in a.log_text(), timeout=5)
    msg = with_subject(raw(corpus["ham"][600]), "An offer")
    r = deliver(a, ["q@example.org"], msg)
    assert r.code == 250, r
    qid = qid_of(r)
    iid = a.query("SELECT id FROM quarantine WHERE qid = ?", (qid,))[0][0]
    api_a.post("/api/v1/quarantine/release", {"ids": [iid]}).expect(200)
    assert wait_for(lambda: "learn release class=ham messages=1" in a.log_text(), timeout=5)
    after = counts(api_a)
    assert after[:2] == (N, N + 1), after
    assert wait_for(lambda: counts(api_b) == after, timeout=PROPAGATION_S), \
        (counts(api_b), after)
    assert a.query(q) == b.query(q)

    # Learning on B a message A learned is "already" there: the event made it so.
    assert learn(api_b, raw(corpus["spam"][0]), "spam").expect(200).json["outcome"] == \
        "already"
    assert counts(api_b) == after


def test_a_node_joining_later_is_trained_by_the_events(api_moatd, pg, corpus, tmp_path):
    """Node 2 starts after node 1 learned: it pulls the events at its join and learns them."""
    a = start_nodes(api_moatd, pg, 1)[0]
    api_a = admin(a)
    for f in corpus["spam"][:10]:
        learn(api_a, raw(f), "spam").expect(200)
    for f in corpus["ham"][:10]:
        learn(api_a, raw(f), "ham").expect(200)
    learn(api_a, raw(corpus["spam"][0]), "ham").expect(200)     # moved
    learn(api_a, raw(corpus["ham"][1]), "forget").expect(200)   # forgotten
    want = counts(api_a)
    assert want[:2] == (9, 10), want
    b = api_moatd(cluster_node="2", cluster_pg=pg.conninfo, cluster_retry="300ms")
    assert wait_for(lambda: "cluster joined" in b.log_text(), timeout=15), b.log_text()[-3000:]
    api_b = admin(b)
    assert wait_for(lambda: counts(api_b) == want, timeout=PROPAGATION_S), (counts(api_b), want)
