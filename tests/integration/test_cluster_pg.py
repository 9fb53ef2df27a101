"""Cluster mode on PostgreSQL (docs/cluster.md): real moatd nodes sharing a real PostgreSQL 15
(peers_cluster.py), real SMTP clients, the JSON API, and an aiosmtpd downstream.

    list entry on A -> refusal on C in < 1 s; ids of B's rows the same on A, per-node ranges;
    suspension on A -> AUTH refused on B; quarantined on A -> listed, viewed, released on B;
    PostgreSQL stopped under load -> nothing lost, degraded, caught up; cluster_node 0 refused.
"""

import smtplib
import threading
import time

from api_client import api_moatd  # noqa: F401 (fixture)
from conftest import message, qid_of, run_moatd, wait_for
from peers_cluster import (Load, admin, downstream, health, lines_received,  # noqa: F401
                           pg, pg_state, sender_refused, start_nodes)
from peers_delivery import delivery_conf
from submission_util import SUBMISSION_CONF, smtp_tls, submission_port
from test_content_rules import deliver, subject_is

NODE_RANGE = 1 << 40
PROPAGATION_MAX_S = 1.0


def test_list_entry_on_a_refuses_on_c_within_a_second(api_moatd, pg):
    a, b, c = start_nodes(api_moatd, pg, 3)
    sender = "spammer@bad.example"
    assert not sender_refused(c, sender)
    api = admin(a)
    r = api.post("/api/v1/policy/entries", {"list": "sender_deny", "value": sender})
    r.expect(201)
    t0 = time.monotonic()
    refused_at = None
    while time.monotonic() - t0 < 5.0:
        if sender_refused(c, sender):
            refused_at = time.monotonic() - t0
            break
        time.sleep(0.01)
    assert refused_at is not None, "the entry never reached node C"
    print(f"propagation A -> C: {refused_at * 1000:.0f} ms")
    assert refused_at < PROPAGATION_MAX_S, f"took {refused_at:.3f}s"
    eid = r.json["id"]
    assert NODE_RANGE <= eid < 2 * NODE_RANGE  # node 1's range
    # The same entry, same id, on every node; and its removal on B reaches A.
    for d in (b, c):
        assert wait_for(lambda: d.query("SELECT id FROM policy_entry WHERE value = ?",
                                        (sender,)) == [(eid,)], timeout=3)
    admin(b).delete(f"/api/v1/policy/entries/{eid}").expect(204)
    assert wait_for(lambda: not a.query("SELECT 1 FROM policy_entry WHERE id = ?", (eid,)),
                    timeout=3)
    assert wait_for(lambda: not sender_refused(a, sender), timeout=3)


def test_rows_made_on_b_appear_on_a_with_the_same_ids(api_moatd, pg):
    a, b = start_nodes(api_moatd, pg, 2)
    api_a, api_b = admin(a), admin(b)
    rule = api_b.post("/api/v1/rules", {"name": "tag offers", "when": subject_is("offer"),
                                         "action": {"type": "tag", "subject_prefix": "[offer]"}}).expect(201).json
    user = api_b.post("/api/v1/users", {"name": "carol", "role": "user"}).expect(201).json
    api_b.put("/api/v1/policy/settings/max_recipients", {"value": "77"}).expect(200)
    assert 2 * NODE_RANGE <= rule["id"] < 3 * NODE_RANGE
    assert 2 * NODE_RANGE <= user["id"] < 3 * NODE_RANGE
    assert wait_for(lambda: api_a.get(f"/api/v1/rules/{rule['id']}").status == 200, timeout=3)
    assert api_a.get(f"/api/v1/rules/{rule['id']}").json["name"] == "tag offers"
    assert wait_for(lambda: any(u["id"] == user["id"] and u["name"] == "carol"
                                for u in api_a.get("/api/v1/users").json["items"]), timeout=3)
    assert wait_for(lambda: a.query("SELECT value FROM policy_setting WHERE key ="
                                    " 'max_recipients'") == [("77",)], timeout=3)

    # Inserted on both nodes at once: each in its own range, no collision, all everywhere.
    def add(api, prefix, out):
        for i in range(15):
            out.append(api.post("/api/v1/policy/entries",
                                {"list": "sender_deny",
                                 "value": f"{prefix}{i}@x.example"}).expect(201).json["id"])
    ids_a, ids_b = [], []
    ta = threading.Thread(target=add, args=(api_a, "a", ids_a))
    tb = threading.Thread(target=add, args=(api_b, "b", ids_b))
    ta.start(), tb.start()
    ta.join(30), tb.join(30)
    assert len(ids_a) == 15 and len(ids_b) == 15
    assert all(NODE_RANGE <= i < 2 * NODE_RANGE for i in ids_a)
    assert all(2 * NODE_RANGE <= i < 3 * NODE_RANGE for i in ids_b)
    want = sorted(ids_a + ids_b)
    q = "SELECT id FROM policy_entry WHERE value LIKE '%@x.example' ORDER BY id"
    for d in (a, b):
        assert wait_for(lambda: [r[0] for r in d.query(q)] == want, timeout=5)


def test_suspension_on_a_refuses_auth_on_b(api_moatd, pg):
    a, b = start_nodes(api_moatd, pg, 2, **SUBMISSION_CONF)
    api_a = admin(a)
    api_a.post("/api/v1/users", {"name": "dave", "role": "user",
                                 "password": "dave-password-1"}).expect(201)
    assert wait_for(lambda: b.query("SELECT 1 FROM dir_user WHERE name = 'dave'"), timeout=3)
    s = smtp_tls(submission_port(b))
    s.login("dave", "dave-password-1")
    s.quit()
    api_a.post("/api/v1/accounts/dave/suspend", {"reason": "compromised"}).expect(200)
    assert wait_for(lambda: b.query("SELECT suspended FROM account_state WHERE user = 'dave'")
                    and b.query("SELECT suspended FROM account_state"
                                " WHERE user = 'dave'")[0][0] > 0, timeout=3)

    def refused():
        s = smtp_tls(submission_port(b))
        try:
            s.login("dave", "dave-password-1")
            code, _ = s.mail("dave@example.org")
            return code >= 500
        except smtplib.SMTPAuthenticationError as e:
            return e.smtp_code == 535 and b"suspended" in e.smtp_error
        finally:
            try:
                s.quit()
            except smtplib.SMTPException:
                pass
    assert wait_for(refused, timeout=3)


def test_quarantined_on_a_is_listed_viewed_and_released_on_b(api_moatd, pg, downstream):
    conf = delivery_conf(downstream.addr)
    a, b = start_nodes(api_moatd, pg, 2, **conf)
    api_a, api_b = admin(a), admin(b)
    api_a.post("/api/v1/rules", {"name": "q offers", "when": subject_is("offer"),
                                 "action": {"type": "quarantine"}}).expect(201)
    gen = a.query("SELECT generation FROM policy_meta")[0][0]
    assert wait_for(lambda: f"loaded generation={gen}" in a.log_text(), timeout=3)
    body = message(subject="A special offer", body_lines=("cluster quarantine body",))
    r = deliver(a, ["q@example.org"], body)
    assert r.code == 250, r
    qid = qid_of(r)
    assert a.query("SELECT count(*) FROM quarantine WHERE qid = ?", (qid,))[0][0] == 1
    assert not (b.data_dir / "spool" / "quarantine" / qid).exists()

    def listed():
        items = api_b.get("/api/v1/quarantine").json["items"]
        return [i for i in items if i.get("qid") == qid]
    assert wait_for(listed, timeout=3)
    iid = listed()[0]["id"]
    raw = api_b.get(f"/api/v1/quarantine/{iid}/raw").expect(200)
    assert b"cluster quarantine body" in raw.body
    assert (b.data_dir / "spool" / "quarantine" / qid).exists()
    api_b.post("/api/v1/quarantine/release", {"ids": [iid]}).expect(200)
    assert wait_for(lambda: any(b"cluster quarantine body" in m["content"]
                                for m in downstream.messages), timeout=10)
    # Gone everywhere: the item on A, A's file, the copy in PostgreSQL.
    assert wait_for(lambda: not a.query("SELECT 1 FROM quarantine WHERE qid = ?", (qid,)),
                    timeout=3)
    assert wait_for(lambda: not (a.data_dir / "spool" / "quarantine" / qid).exists(), timeout=3)
    assert wait_for(lambda: pg.sql(f"SELECT count(*) FROM moat_blob WHERE qid = '{qid}'")
                    .strip() == "0", timeout=3)


def test_postgres_outage_under_load_loses_nothing_and_catches_up(api_moatd, pg, downstream):
    conf = delivery_conf(downstream.addr)
    nodes = start_nodes(api_moatd, pg, 3, **conf)
    a, c = nodes[0], nodes[2]
    total = 150
    load = Load(nodes, total)
    assert wait_for(lambda: len(load.sent) >= 20, timeout=20)
    pg.stop()
    assert wait_for(lambda: pg_state(a).get("state") == "down", timeout=5)
    h = health(a)
    assert h["status"] == "degraded"
    # A change on A while PostgreSQL is away waits in A's outbox.
    admin(a).post("/api/v1/policy/entries", {"list": "sender_deny",
                                             "value": "outage@bad.example"}).expect(201)
    assert wait_for(lambda: pg_state(a).get("backlog", 0) > 0, timeout=5)
    load.join()
    assert load.errors == [] and len(load.sent) == total
    pg.start()
    for d in nodes:
        assert wait_for(lambda: health(d)["status"] == "ok", timeout=10), health(d)
    assert wait_for(lambda: sender_refused(c, "outage@bad.example"), timeout=5)
    assert wait_for(lambda: pg_state(a).get("backlog") == 0, timeout=5)
    assert wait_for(lambda: lines_received(downstream, load.want) == load.want, timeout=60), \
        len(lines_received(downstream, load.want))
    # Every node's message log reached the others.
    logs = [d.query("SELECT count(*) FROM message_log WHERE sender = 'load@example.net'")[0][0]
            for d in nodes]
    assert wait_for(lambda: all(d.query("SELECT count(*) FROM message_log"
                                        " WHERE sender = 'load@example.net'")[0][0] == total
                                for d in nodes), timeout=10), logs


def test_cluster_node_zero_is_refused(tmp_path, pg):
    r = run_moatd(["--data-dir", tmp_path / "data", "-o", f"cluster_pg={pg.conninfo}",
                   "-o", "smtp_listen=127.0.0.1:0", "-o", "http_listen=127.0.0.1:0"])
    assert r.returncode != 0
    assert "cluster_node is 0" in r.stderr + r.stdout
