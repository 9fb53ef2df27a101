"""`moatd backup` and `moatd restore` through the real binary: a backup taken while moatd runs
and a client keeps sending, with queued, held and quarantined mail (server rules); the backup
checked against its own manifest; restored into a fresh data directory where a new moatd finds
every message the backed-up database names (queue API, quarantine API, the files byte for byte)
and presents the same STARTTLS certificate; damaged backups and occupied targets refused."""

import hashlib
import json
import shutil
import smtplib
import sqlite3
import ssl
import subprocess
import threading
import time

import pytest

from conftest import MOATD_BIN, local_domains_seed, message, qid_of, run_moatd, wait_for
from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401 (fixture)
from peers_policy import set_rules
from test_content_rules import subject_is, deliver

LOAD_MESSAGES = 200     # sent by the background client while the backup runs
LOAD_SECONDS = 60       # upper bound for that client


def admin(d):
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    return api


def db_rows(path, sql):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return sorted(tuple(r) for r in con.execute(sql))
    finally:
        con.close()


QUEUE_SQL = "SELECT qid, rcpt, state FROM queue_rcpt"
QUAR_SQL = "SELECT qid, rcpt, kind FROM quarantine"


def subject_for(i):
    return {0: "an offer", 5: "holdme now"}.get(i % 10, f"plain {i}")


class Sender(threading.Thread):
    """One SMTP client sending LOAD_MESSAGES messages, one after another, bounded in time."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.sent = []          # queue ids acknowledged with 250
        self.error = None

    def run(self):
        deadline = time.monotonic() + LOAD_SECONDS
        try:
            c = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
            c.ehlo()
            for i in range(LOAD_MESSAGES):
                if time.monotonic() > deadline:
                    break
                if i and i % 50 == 0:   # a fresh session now and then, as real clients do
                    c.quit()
                    c = smtplib.SMTP("127.0.0.1", self.port, timeout=10)
                    c.ehlo()
                code, text = c.mail("load@example.net")
                assert code == 250, (i, code, text)
                code, text = c.rcpt(f"u{i % 7}@example.org")
                assert code == 250, (i, code, text)
                code, text = c.data(message(subject=subject_for(i)))
                assert code == 250, (code, text)
                self.sent.append(text.decode().split()[-1])
            c.quit()
        except Exception as e:  # reported by the test
            self.error = e


@pytest.fixture
def d(api_moatd):
    d = api_moatd(seed_policy=local_domains_seed("example.org"))
    set_rules(d, [
        {"name": "q offer", "when": subject_is("offer"), "action": {"type": "quarantine", "kind": "spam"}},
        {"name": "h holdme", "when": subject_is("holdme"), "action": {"type": "hold"}},
    ])
    return d


def backup(d, dest, *extra):
    return run_moatd(["backup", "--data-dir", d.data_dir, *extra, dest], timeout=60)


def restore(data_dir, src, *extra):
    return run_moatd(["restore", "--data-dir", data_dir, *extra, src], timeout=60)


def manifest(dest):
    return json.loads((dest / "MANIFEST.json").read_text())


def starttls_cert(port):
    c = smtplib.SMTP("127.0.0.1", port, timeout=10)
    try:
        c.ehlo()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c.starttls(context=ctx)
        return c.sock.getpeercert(binary_form=True)
    finally:
        c.quit()


def test_backup_while_sending_then_restore_finds_every_message(d, moatd_factory, tmp_path):
    before = {}
    for i, subject in enumerate(["plain a", "plain b", "plain c", "holdme 1", "holdme 2",
                                 "an offer 1", "an offer 2"]):
        r = deliver(d, [f"r{i}@example.org", f"s{i}@example.org"], message(subject=subject))
        before[qid_of(r)] = subject
    state = dict(((q, s) for q, _, s in d.query(QUEUE_SQL)))
    assert sorted(set(state.values())) == ["held", "queued"]
    assert len(d.query(QUAR_SQL)) == 4

    load = Sender(d.smtp_port)
    load.start()
    assert wait_for(lambda: len(load.sent) >= 20 or load.error, timeout=30), "load did not start"
    dest = tmp_path / "backup"
    r = backup(d, dest)
    in_flight = len(load.sent)
    load.join(LOAD_SECONDS + 10)
    assert load.error is None, load.error
    assert r.returncode == 0, r.stderr
    assert "queue_messages=" in r.stdout

    # The backup is the database as of one moment and the files it names.
    bq = db_rows(dest / "moat.db", QUEUE_SQL)
    bz = db_rows(dest / "moat.db", QUAR_SQL)
    bq_qids = {q for q, _, _ in bq}
    bz_qids = {q for q, _, _ in bz}
    for qid, subject in before.items():
        assert qid in (bz_qids if "offer" in subject else bq_qids), (qid, subject)
    assert len(bq_qids | bz_qids) >= len(before) + 20, "mail acknowledged before the backup is missing"
    assert len(load.sent) == LOAD_MESSAGES and in_flight < LOAD_MESSAGES, \
        "the backup did not run while mail was arriving"
    assert {s for _, _, s in bq} == {"queued", "held"}

    m = manifest(dest)
    assert m["format"] == "moat-backup" and m["version"] == 1
    assert m["schema_version"] == d.query("PRAGMA user_version")[0][0]
    assert m["counts"]["queue_messages"] == len(bq_qids)
    assert m["counts"]["quarantine_items"] == len(bz)
    assert m["counts"]["queue_held"] == sum(1 for r in bq if r[2] == "held")
    assert m["finished_during_backup"] == []  # delivery is off: nothing can finish
    listed = {f["path"]: f for f in m["files"]}
    assert {f"spool/queue/{q}" for q in bq_qids} <= set(listed)
    assert {f"spool/quarantine/{q}" for q in bz_qids} <= set(listed)
    assert {"moat.db", "tls/cert.pem", "tls/key.pem", "secrets/link.key"} <= set(listed)
    for path, f in listed.items():
        data = (dest / path).read_bytes()
        assert len(data) == f["size"] and hashlib.sha256(data).hexdigest() == f["sha256"], path
    assert (dest / "tls" / "key.pem").stat().st_mode & 0o077 == 0

    # A backup never writes into a directory that has something in it.
    r = backup(d, dest)
    assert r.returncode == 2 and "not an empty directory" in r.stderr, r

    # Restore into a fresh directory, start moatd there.
    fresh = tmp_path / "fresh"
    r = restore(fresh, dest)
    assert r.returncode == 0, r.stderr
    d2 = moatd_factory(data_dir=fresh)
    log = d2.log_text()
    assert f"reconciled queued={len(bq_qids)} incoming_removed=0 orphans_removed=0 lost=0" in log, log
    assert "LOST MESSAGE" not in log
    assert db_rows(d2.db_path, QUEUE_SQL) == bq
    assert db_rows(d2.db_path, QUAR_SQL) == bz
    for q in bq_qids:
        assert (fresh / "spool" / "queue" / q).read_bytes() == \
            (d.data_dir / "spool" / "queue" / q).read_bytes(), q
    for q in bz_qids:
        assert (fresh / "spool" / "quarantine" / q).read_bytes() == \
            (d.data_dir / "spool" / "quarantine" / q).read_bytes(), q

    # The APIs of the restored moatd show them (same administrator, same password).
    api = admin(d2)
    for qid, subject in before.items():
        if "offer" in subject:
            continue
        got = api.get(f"/api/v1/queue?qid={qid}").expect(200).json["items"]
        assert len(got) == 2 and {x["state"] for x in got} == \
            {"held" if "holdme" in subject else "queued"}, got
    items = api.get("/api/v1/quarantine?limit=500").expect(200).json["items"]
    assert sorted((x["qid"], x["recipient"]) for x in items) == sorted((q, r) for q, r, _ in bz)
    one = next(x for x in items if x["qid"] in before)
    raw = api.get(f"/api/v1/quarantine/{one['id']}/raw").expect(200)
    assert raw.body == (d.data_dir / "spool" / "quarantine" / one["qid"]).read_bytes()

    # Same key material: the same STARTTLS certificate.
    assert (fresh / "tls" / "cert.pem").read_bytes() == (d.data_dir / "tls" / "cert.pem").read_bytes()
    assert starttls_cert(d2.smtp_port) == starttls_cert(d.smtp_port)
    assert (fresh / "secrets" / "link.key").read_bytes() == \
        (d.data_dir / "secrets" / "link.key").read_bytes()

    # Mail still flows on the restored node, and new queue ids do not meet old files.
    r = deliver(d2, ["new@example.org"], message(subject="after restore"))
    assert qid_of(r) not in bq_qids

    # Restore refuses a data directory that moatd holds, and one that has a database.
    r = restore(fresh, dest, "--force")
    assert r.returncode == 1 and "moatd is running" in r.stderr, r
    assert d2.stop() == 0
    r = restore(fresh, dest)
    assert r.returncode == 1 and "already has a database" in r.stderr, r


def test_restore_refuses_a_damaged_backup(d, tmp_path):
    deliver(d, ["a@example.org"], message(subject="an offer"))
    deliver(d, ["b@example.org"], message(subject="plain"))
    dest = tmp_path / "backup"
    r = backup(d, dest)
    assert r.returncode == 0, r.stderr

    damaged = tmp_path / "damaged"
    shutil.copytree(dest, damaged)
    victim = next((damaged / "spool" / "quarantine").iterdir())
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x20
    victim.write_bytes(bytes(data))
    target = tmp_path / "target"
    r = restore(target, damaged)
    assert r.returncode == 1, r
    assert "differs from the manifest" in r.stderr and victim.name in r.stderr, r.stderr
    assert not (target / "moat.db").exists()
    assert not (target / "spool" / "queue").exists() or \
        list((target / "spool" / "queue").iterdir()) == []

    # A missing file, a manifest that lies about the database, no manifest at all.
    shutil.rmtree(damaged)
    shutil.copytree(dest, damaged)
    next((damaged / "spool" / "queue").iterdir()).unlink()
    r = restore(target, damaged)
    assert r.returncode == 1 and "missing from the backup" in r.stderr, r.stderr
    shutil.rmtree(damaged)
    shutil.copytree(dest, damaged)
    with open(damaged / "moat.db", "ab") as f:
        f.write(b"\0" * 4096)
    r = restore(target, damaged)
    assert r.returncode == 1 and "moat.db: size differs" in r.stderr, r.stderr
    (damaged / "MANIFEST.json").unlink()
    r = restore(target, damaged)
    assert r.returncode == 1 and "not a complete backup" in r.stderr, r.stderr
    assert not (target / "moat.db").exists()

    # A manifest may only name files a data directory has.
    shutil.rmtree(damaged)
    shutil.copytree(dest, damaged)
    m = manifest(damaged)
    m["files"].append({"path": "../escape", "size": 0, "sha256": hashlib.sha256(b"").hexdigest()})
    (damaged / "MANIFEST.json").write_text(json.dumps(m))
    r = restore(target, damaged)
    assert r.returncode == 1 and "not a valid entry" in r.stderr, r.stderr

    # The untouched backup still restores.
    r = restore(target, dest)
    assert r.returncode == 0, r.stderr
    assert (target / "moat.db").exists()


def test_backup_usage(d, tmp_path):
    r = run_moatd(["backup", "--data-dir", d.data_dir])
    assert r.returncode == 2 and "usage: moatd backup" in r.stderr
    r = run_moatd(["restore", "--data-dir", tmp_path / "x"])
    assert r.returncode == 2 and "usage: moatd restore" in r.stderr
    r = run_moatd(["backup", "--data-dir", tmp_path / "nothing", tmp_path / "b"])
    assert r.returncode == 1 and "moat.db" in r.stderr, r.stderr


def test_rows_whose_file_went_meanwhile_are_left_out(d, moatd_factory, tmp_path):
    """A message that finishes between the database copy and the file copy (its file is
    unlinked only after its rows are gone) is left out of the backup, and named in the
    manifest, so a restored moatd never meets rows without a file.  The file is removed by
    hand here, which is what the backup sees in that case."""
    kept = qid_of(deliver(d, ["a@example.org"], message(subject="plain")))
    gone = qid_of(deliver(d, ["b@example.org"], message(subject="plain")))
    gone_q = qid_of(deliver(d, ["c@example.org"], message(subject="an offer")))
    assert d.stop() == 0
    (d.data_dir / "spool" / "queue" / gone).unlink()
    (d.data_dir / "spool" / "quarantine" / gone_q).unlink()
    dest = tmp_path / "backup"
    r = backup(d, dest)
    assert r.returncode == 0, r.stderr
    assert "finished_during_backup=2" in r.stdout, r.stdout
    m = manifest(dest)
    assert sorted(m["finished_during_backup"]) == \
        sorted([f"spool/queue/{gone}", f"spool/quarantine/{gone_q}"])
    assert {q for q, _, _ in db_rows(dest / "moat.db", QUEUE_SQL)} == {kept}
    assert db_rows(dest / "moat.db", QUAR_SQL) == []
    assert db_rows(dest / "moat.db", "SELECT qid FROM queue_message") == [(kept,)]
    assert m["counts"]["queue_messages"] == 1 and m["counts"]["quarantine_items"] == 0

    fresh = tmp_path / "fresh"
    assert restore(fresh, dest).returncode == 0
    d2 = moatd_factory(data_dir=fresh)
    log = d2.log_text()
    assert "reconciled queued=1 incoming_removed=0 orphans_removed=0 lost=0" in log, log
    assert "LOST MESSAGE" not in log
