"""`moatd queue` changes go through the same queue operations as the API and leave
the same audit rows: one per command, in the transaction of the change, with the
filter as "before" and the counts as "after"; a refused command leaves none."""

import json
import subprocess

from conftest import MOATD_BIN
from peers_delivery import rcpt_states, send


def cli(d, *args, want=0):
    p = subprocess.run([MOATD_BIN, "queue", "-c", str(d.conf_path)] + list(args),
                       capture_output=True, text=True, timeout=15)
    assert p.returncode == want, f"moatd queue {args}: rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def audit_rows(d):
    rows = d.query("SELECT actor, actor_id, via, client_addr, action, object_type, object_id,"
                   " before, after FROM api_audit WHERE object_type = 'queue' ORDER BY id")
    return [{"actor": r[0], "actor_id": r[1], "via": r[2], "client_addr": r[3],
             "action": r[4], "object_type": r[5], "object_id": r[6],
             "before": json.loads(r[7]) if r[7] else None,
             "after": json.loads(r[8]) if r[8] else None} for r in rows]


def test_cli_queue_changes_write_audit_rows(moatd_factory):
    d = moatd_factory()  # delivery off: the queue stays as we make it
    m1 = send(d, "alice@example.net", ["a@one.test", "b@two.test"])
    m2 = send(d, "spam@bad.test", ["x@one.test"])
    assert audit_rows(d) == []

    cli(d, "hold", "--sender", "spam@bad.test", "--reason", "suspected spam run")
    cli(d, "release", "--qid", m2)
    cli(d, "retry", "--domain", "two.test")
    cli(d, "list")                         # reads: no audit row
    cli(d, "show", m1)
    cli(d, "delete", want=2)               # refused without a filter: no row
    out = json.loads(cli(d, "delete", "--json", "--sender", "spam@bad.test"))
    assert out == {"command": "delete", "recipients": 1, "messages_removed": 1}
    assert rcpt_states(d, m1) == {"a@one.test": "queued", "b@two.test": "queued"}

    rows = audit_rows(d)
    assert [r["action"] for r in rows] == ["queue.hold", "queue.release", "queue.retry",
                                           "queue.delete"], rows
    for r in rows:
        assert (r["actor"], r["actor_id"], r["via"], r["client_addr"],
                r["object_type"]) == ("cli", None, "system", "-", "queue"), r
    assert rows[0]["before"] == {"sender": "spam@bad.test", "reason": "suspected spam run"}
    assert rows[0]["after"] == {"recipients": 1, "messages_removed": 0}
    assert rows[1]["object_id"] == m2 and rows[1]["before"] == {"qid": m2}
    assert rows[1]["after"] == {"recipients": 1, "messages_removed": 0}
    assert rows[2]["before"] == {"rcpt_domain": "two.test"}
    assert rows[2]["after"] == {"recipients": 1, "messages_removed": 0}
    assert rows[3]["before"] == {"sender": "spam@bad.test"}
    assert rows[3]["after"] == {"recipients": 1, "messages_removed": 1}

    # --all without a filter is audited with an empty filter.
    cli(d, "hold", "--all")
    last = audit_rows(d)[-1]
    assert last["action"] == "queue.hold" and last["before"] == {}
    assert last["after"] == {"recipients": 2, "messages_removed": 0}
