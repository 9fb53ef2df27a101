"""Bulk queue operations by filter through `moatd queue ...` (list, show, hold, release,
retry, delete), with moatd running, and the running runner noticing the change."""

import json
import sqlite3
import subprocess

from conftest import MOATD_BIN, message
from peers_delivery import Downstream, delivery_conf, rcpt_states, send, wait_for


def cli(d, *args, want=0):
    p = subprocess.run([MOATD_BIN, "queue", "-c", str(d.conf_path)] + list(args),
                       capture_output=True, text=True, timeout=15)
    assert p.returncode == want, f"moatd queue {args}: rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def rows(d, *filters):
    return json.loads(cli(d, "list", "--json", *filters))


def test_filters_hold_release_delete(moatd_factory):
    d = moatd_factory()  # delivery off: the queue stays as we make it
    m1 = send(d, "alice@example.net", ["a@one.test", "b@two.test"])
    m2 = send(d, "spam@bad.test", ["x@one.test"])
    m3 = send(d, "spam@bad.test", ["y@two.test"])

    assert len(rows(d)) == 4
    assert {r["qid"] for r in rows(d, "--sender", "SPAM@bad.test")} == {m2, m3}
    assert {r["rcpt"] for r in rows(d, "--domain", "two.test")} == {"b@two.test", "y@two.test"}
    assert len(rows(d, "--client", "127.0.0.1")) == 4
    assert rows(d, "--client", "192.0.2.1") == []
    assert rows(d, "--older-than", "1h") == []
    assert len(rows(d, "--older-than", "0s")) == 4
    assert len(rows(d, "--limit", "1")) == 1

    out = cli(d, "hold", "--sender", "spam@bad.test", "--reason", "suspected spam run")
    assert "2 recipient" in out
    assert {r["qid"] for r in rows(d, "--state", "held")} == {m2, m3}
    assert {r["qid"] for r in rows(d, "--reason", "SUSPECTED")} == {m2, m3}

    cli(d, "release", "--qid", m2)
    assert rcpt_states(d, m2) == {"x@one.test": "queued"}
    assert rcpt_states(d, m3) == {"y@two.test": "held"}

    # No filter: refused, nothing changes.
    cli(d, "delete", want=2)
    assert len(rows(d)) == 4

    out = json.loads(cli(d, "delete", "--json", "--sender", "spam@bad.test"))
    assert out == {"command": "delete", "recipients": 2, "messages_removed": 2}
    assert d.queue_files() == [m1]
    assert d.query("SELECT qid FROM queue_message") == [(m1,)]

    # One recipient of a message: the message stays for the other.
    cli(d, "delete", "--qid", m1, "--domain", "one.test")
    assert rcpt_states(d, m1) == {"b@two.test": "queued"}
    assert d.queue_files() == [m1]

    show = json.loads(cli(d, "show", m1, "--json"))
    assert show["qid"] == m1 and "Subject: t" in show["headers"]
    assert "Subject: t" in cli(d, "show", m1)
    cli(d, "show", "0000000000000000", want=1)
    table = cli(d, "list")
    assert m1 in table and "1 recipient(s)" in table


def test_retry_and_release_reach_running_runner(moatd_factory):
    ds = Downstream()  # down at first
    conf = delivery_conf(ds.addr, retry_min="1h", retry_max="1h")
    d = moatd_factory(**conf)
    qid = send(d, "alice@example.net", ["bob@example.org"])
    assert wait_for(lambda: rcpt_states(d, qid) == {"bob@example.org": "deferred"})
    ds.start()
    try:
        # Back-off is an hour; "retry now" from the CLI makes it due, the runner sees it.
        cli(d, "retry", "--domain", "example.org")
        ds.wait_for(1, timeout=10)

        # Held mail waits; release delivers it.
        ds.replies["carol@example.org"] = "550 5.1.1 no such user"
        q2 = send(d, "alice@example.net", ["carol@example.org"])
        assert wait_for(lambda: rcpt_states(d, q2) == {"carol@example.org": "dead"})
        del ds.replies["carol@example.org"]
        assert {r["qid"] for r in rows(d, "--state", "dead", "--reason", "no such user")} == {q2}
        cli(d, "release", "--state", "dead")
        ds.wait_for(2, timeout=10)
        assert wait_for(lambda: d.query("SELECT count(*) FROM queue_message") == [(0,)])
    finally:
        ds.stop()


def test_queue_lifetime_expires_to_dead(moatd_factory):
    ds = Downstream()  # never up
    conf = delivery_conf(ds.addr)
    d = moatd_factory(**conf)
    qid = send(d, "alice@example.net", ["bob@example.org"])
    assert wait_for(lambda: rcpt_states(d, qid) == {"bob@example.org": "deferred"})
    d.stop()
    con = sqlite3.connect(str(d.db_path))
    con.execute("UPDATE queue_message SET received_at = received_at - 6 * 86400000")
    con.commit()
    con.close()
    d2 = moatd_factory(data_dir=d.data_dir, **conf)
    assert wait_for(lambda: rcpt_states(d2, qid) == {"bob@example.org": "dead"}), \
        rcpt_states(d2, qid)
    err = d2.query("SELECT last_error FROM queue_rcpt WHERE qid = ?", (qid,))[0][0]
    assert "expired" in err


def test_dsn_only_to_authenticated_local_sender(moatd_factory):
    ds = Downstream().start()
    ds.replies["nobody@example.org"] = "550 5.1.1 no such user"
    try:
        # Queue two messages with delivery off; mark one as sent by an authenticated user.
        d = moatd_factory()
        q_auth = send(d, "alice@example.net", ["nobody@example.org"], message(subject="mine"))
        q_anon = send(d, "remote@elsewhere.test", ["nobody@example.org"])
        d.stop()
        con = sqlite3.connect(str(d.db_path))
        con.execute("UPDATE queue_message SET auth_user = 'alice' WHERE qid = ?", (q_auth,))
        con.commit()
        con.close()
        conf = delivery_conf(ds.addr, dsn_to_local_senders="yes", smarthost=ds.addr)
        d2 = moatd_factory(data_dir=d.data_dir, **conf)
        # alice gets a DSN (delivered downstream, example.net is local); remote gets nothing.
        ds.wait_for(1, timeout=15)
        assert ds.rcpts() == ["alice@example.net"]
        dsn = ds.messages[0]
        assert dsn["mail_from"] in ("", "<>")  # aiosmtpd reports the null sender as <>
        text = dsn["content"].decode()
        assert "multipart/report; report-type=delivery-status" in text
        assert "Final-Recipient: rfc822; nobody@example.org" in text
        assert "Status: 5.1.1" in text and "Action: failed" in text
        assert "Subject: mine" in text
        assert wait_for(lambda: rcpt_states(d2, q_anon) == {"nobody@example.org": "dead"})
        assert "remote@elsewhere.test" not in ds.rcpts()
    finally:
        ds.stop()
