"""Start, stop, signals, flags, config errors, the data directory and /healthz."""

import json
import os
import re
import signal
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from conftest import message, qid_of, run_moatd, strip_received, wait_for

CONFIG_KEYS = [
    "data_dir", "hostname", "user", "log", "log_level", "smtp_listen", "http_listen",
    "greet_pause", "max_command_line", "max_text_line", "max_recipients", "max_message_size",
    "max_errors", "max_sessions", "max_sessions_per_client", "idle_timeout", "data_timeout",
    "session_timeout", "shutdown_timeout",
]


def send_one(d, subject="x", port=None):
    body = message(subject)
    with d.raw(port) as c:
        c.ehlo()
        qid = qid_of(c.transaction("s@example.net", ["r@example.org"], body))
    return qid, body


def write_conf(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


# --- signals --------------------------------------------------------------------------------

def test_sigterm_closes_idle_sessions(moatd_factory):
    d = moatd_factory(shutdown_timeout="2s")
    after_banner = d.raw()
    after_ehlo = d.raw()
    after_ehlo.ehlo()
    in_tx = d.raw()
    in_tx.ehlo()
    in_tx.expect_cmd("MAIL FROM:<s@example.net>", 250)
    in_tx.expect_cmd("RCPT TO:<r@example.org>", 250)
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    for c in (after_banner, after_ehlo, in_tx):
        with c:
            c.expect("421 4.3.2", timeout=5)
            c.expect_closed()
    rc = d.proc.wait(timeout=2 + 5)   # no second signal
    assert rc == 0
    assert time.monotonic() - t0 < 2 + 5
    assert d.incoming_files() == []
    assert d.queue_files() == []


def test_sigterm_without_sessions_is_quick(moatd):
    qid, _ = send_one(moatd)
    t0 = time.monotonic()
    assert moatd.stop() == 0
    assert time.monotonic() - t0 < 3
    assert qid in moatd.queue_files()


def test_restart_keeps_queue(moatd_factory):
    d = moatd_factory()
    qid, body = send_one(d)
    assert d.stop() == 0
    d2 = moatd_factory(data_dir=d.data_dir)
    assert strip_received(d2.spool_message(qid)) == body
    assert d2.query("SELECT rcpt, state FROM queue_rcpt WHERE qid = ?", (qid,)) == [
        ("r@example.org", "queued")]
    qid2, _ = send_one(d2)
    assert qid2 != qid
    assert sorted(d2.queue_files()) == sorted([qid, qid2])


def test_sighup_reopens_log_file(moatd_factory, tmp_path):
    log = tmp_path / "moatd-file.log"
    d = moatd_factory(log=str(log))
    assert log.exists() and " ready " in log.read_text()
    qid1, _ = send_one(d, "before")
    assert wait_for(lambda: f"qid={qid1}" in log.read_text(), timeout=3)
    rotated = tmp_path / "moatd-file.log.1"
    os.rename(log, rotated)
    d.signal(signal.SIGHUP)
    wait_for(log.exists, timeout=2)
    time.sleep(0.3)
    qid2, _ = send_one(d, "after")
    assert wait_for(lambda: log.exists() and f"qid={qid2}" in log.read_text(), timeout=3), \
        "new connection's log line not in a fresh file at the original path"
    assert f"qid={qid2}" not in rotated.read_text()
    assert f"qid={qid1}" in rotated.read_text()
    assert d.alive()


@pytest.mark.parametrize("mode", ["filesystem", "file"])
def test_spool_sync_modes_keep_mail_across_a_restart(moatd_factory, mode):
    """Both ways of making a group commit durable queue the message before the 250."""
    d = moatd_factory(spool_sync=mode)
    qid, body = send_one(d)
    assert d.stop() == 0
    d2 = moatd_factory(data_dir=d.data_dir, spool_sync=mode)
    assert strip_received(d2.spool_message(qid)) == body
    assert d2.query("SELECT state FROM queue_rcpt WHERE qid = ?", (qid,)) == [("queued",)]


def test_spool_sync_bad_value_refused(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text(f"data_dir = {tmp_path / 'data'}\nspool_sync = sometimes\n")
    p = run_moatd(["-c", str(conf), "-t"])
    assert p.returncode == 1 and "spool_sync" in p.stderr and "filesystem|file" in p.stderr, \
        (p.returncode, p.stderr)


# --- single instance, database checks ------------------------------------------------------

def test_second_instance_refused(moatd):
    t0 = time.monotonic()
    p = run_moatd(["-c", moatd.conf_path])
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert p.stderr.strip(), "no message on stderr"
    assert time.monotonic() - t0 < 10
    assert moatd.alive()
    send_one(moatd)


def test_schema_newer_than_binary(moatd_factory):
    d = moatd_factory()
    send_one(d)
    assert d.stop() == 0
    con = sqlite3.connect(str(d.db_path), timeout=5)
    con.execute("PRAGMA user_version = 9999")
    con.commit()
    con.close()
    before = d.db_path.read_bytes()
    mtime = os.stat(d.db_path).st_mtime_ns
    p = run_moatd(["-c", d.conf_path])
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert p.stderr.strip()
    assert d.db_path.read_bytes() == before, "moat.db modified"
    assert os.stat(d.db_path).st_mtime_ns == mtime, "moat.db mtime changed"


@pytest.mark.parametrize("content", [
    b"this is not an SQLite database\n" * 200,
    b"SQLite format 3\x00" + b"\xff" * 4080,
])
def test_garbage_database(tmp_path, content):
    data = tmp_path / "data"
    data.mkdir()
    (data / "moat.db").write_bytes(content)
    conf = write_conf(tmp_path / "moatd.conf", [
        f"data_dir = {data}", "smtp_listen = 127.0.0.1:0", "http_listen = 127.0.0.1:0"])
    p = run_moatd(["-c", conf])
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert p.stderr.strip()
    assert (data / "moat.db").read_bytes() == content


def test_data_dir_created_on_first_run(moatd_factory, tmp_path):
    data = tmp_path / "fresh-data"
    assert not data.exists()
    d = moatd_factory(data_dir=data)
    assert data.is_dir()
    assert (data / "moat.db").is_file()
    assert (data / "spool").is_dir()
    con = d.db()
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] >= 1
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()
    assert {"queue_message", "queue_rcpt", "message_log"} <= tables
    qid, _ = send_one(d)
    assert (data / "spool" / "queue" / qid).is_file()


# --- configuration ------------------------------------------------------------------------

def base_lines(tmp_path):
    return [
        "# test config",
        "",
        f"data_dir = {tmp_path / 'data'}",
        "smtp_listen = 127.0.0.1:0",
        "http_listen = 127.0.0.1:0",
    ]


def test_unknown_key(tmp_path):
    lines = base_lines(tmp_path) + ["frobnicate_level = 3"]
    conf = write_conf(tmp_path / "moatd.conf", lines)
    p = run_moatd(["-c", conf])
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert f"{conf}:6:" in p.stderr, p.stderr
    assert "frobnicate_level" in p.stderr
    assert not (tmp_path / "data" / "moat.db").exists()


@pytest.mark.parametrize("key,value", [
    ("max_recipients", "lots"),
    ("max_recipients", "-1"),
    ("max_recipients", "99999999999999999999999"),
    ("idle_timeout", "5x"),
    ("idle_timeout", "ms"),
    ("max_message_size", "10Q"),
    ("max_message_size", "1.5.3M"),
    ("log_level", "loud"),
    ("smtp_listen", "not-an-address"),
    ("http_listen", "127.0.0.1:99999"),
    ("greet_pause", "1y"),
    ("max_command_line", ""),
])
def test_bad_value(tmp_path, key, value):
    lines = base_lines(tmp_path) + ["", f"{key} = {value}"]
    conf = write_conf(tmp_path / "moatd.conf", lines)
    for args in (["-c", conf], ["-c", conf, "-t"]):
        p = run_moatd(args)
        assert p.returncode == 1, (args, p.returncode, p.stdout, p.stderr)
        assert f"{conf}:7:" in p.stderr, p.stderr
        assert key in p.stderr, p.stderr


def test_missing_config_file(tmp_path):
    p = run_moatd(["-c", tmp_path / "nope.conf"])
    assert p.returncode == 1
    assert "nope.conf" in p.stderr


@pytest.mark.parametrize("key,value", [
    ("idle_timeout", "250ms"), ("idle_timeout", "30"), ("idle_timeout", "2m"),
    ("session_timeout", "1h"), ("max_message_size", "1k"), ("max_message_size", "2M"),
    ("max_message_size", "1G"), ("log_level", "debug"), ("log_level", "warn"),
    ("log_level", "error"), ("greet_pause", "0"),
])
def test_good_values_accepted(tmp_path, key, value):
    conf = write_conf(tmp_path / "moatd.conf", base_lines(tmp_path) + [f"{key} = {value}"])
    p = run_moatd(["-c", conf, "-t"])
    assert p.returncode == 0, (p.returncode, p.stderr)


def effective_value(stdout, key):
    m = re.search(rf"^\s*{key}\s*=\s*(.*?)\s*$", stdout, re.M)
    assert m, f"{key} not in -t output:\n{stdout}"
    return m.group(1)


def test_check_config_prints_effective_config(tmp_path):
    conf = write_conf(tmp_path / "moatd.conf", base_lines(tmp_path) + ["max_recipients = 7"])
    p = run_moatd(["-c", conf, "-t"])
    assert p.returncode == 0, p.stderr
    assert effective_value(p.stdout, "max_recipients") == "7"
    assert effective_value(p.stdout, "max_errors") == "10"        # a default
    for key in CONFIG_KEYS:
        effective_value(p.stdout, key)
    p = run_moatd(["-c", conf, "-t", "-o", "max_recipients=9"])
    assert p.returncode == 0
    assert effective_value(p.stdout, "max_recipients") == "9"
    # -t neither starts the daemon nor creates the data directory's database.
    assert not (tmp_path / "data" / "moat.db").exists()


def test_example_config_documents_every_key():
    """etc/moatd.conf parses, and every key the binary knows is documented there (set or
    commented out with its default), and nothing else."""
    example = Path(__file__).resolve().parents[2] / "etc" / "moatd.conf"
    p = run_moatd(["-c", example, "-t"])
    assert p.returncode == 0, p.stderr
    known = {line.split(" = ")[0] for line in p.stdout.splitlines() if " = " in line}
    documented = set(re.findall(r"^#?([a-z_0-9]+) = ", example.read_text(), re.M))
    assert known == documented, (sorted(known - documented), sorted(documented - known))
    # The container's config (docker/moatd.conf) parses too.
    p = run_moatd(["-c", example.parents[1] / "docker" / "moatd.conf", "-t"])
    assert p.returncode == 0, p.stderr


def test_flag_overrides_file(moatd_factory):
    d = moatd_factory(args=["-o", "max_recipients=2"], max_recipients=50)
    with d.raw() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", 250)
        c.expect_cmd("RCPT TO:<a@example.org>", "250 2.1.5")
        c.expect_cmd("RCPT TO:<b@example.org>", "250 2.1.5")
        c.expect_cmd("RCPT TO:<c@example.org>", "452 4.5.3")


def test_unknown_override_key(tmp_path):
    conf = write_conf(tmp_path / "moatd.conf", base_lines(tmp_path))
    p = run_moatd(["-c", conf, "-t", "-o", "no_such_key=1"])
    assert p.returncode == 1
    assert "no_such_key" in p.stderr
    p = run_moatd(["-c", conf, "-t", "-o", "max_recipients=lots"])
    assert p.returncode == 1
    assert "max_recipients" in p.stderr


def test_listen_and_data_dir_flags(moatd_factory, tmp_path):
    other = tmp_path / "other-data"
    d = moatd_factory(args=["--data-dir", str(other),
                            "--smtp-listen", "127.0.0.1:0,127.0.0.1:0",
                            "--http-listen", "127.0.0.1:0"],
                      smtp_listen="127.0.0.1:1", http_listen="127.0.0.1:1")
    assert len(d.smtp_addrs) == 2, d.ready_line
    assert d.smtp_addrs[0][1] != d.smtp_addrs[1][1]
    assert d.http_port not in (0, 1)
    d.data_dir = other
    qids = [send_one(d, port=port)[0] for _, port in d.smtp_addrs]
    assert sorted(p.name for p in (other / "spool" / "queue").iterdir()) == sorted(qids)
    assert not (d.workdir / "data" / "moat.db").exists()
    status, _, _ = d.http_get("/healthz")
    assert status == 200


def test_version_and_help():
    for flag in ("-V", "--version"):
        p = run_moatd([flag])
        assert p.returncode == 0
        assert "moatd" in p.stdout.lower()
    p = run_moatd(["-h"])
    assert p.returncode == 0
    assert "-c" in p.stdout + p.stderr
    p = run_moatd(["--no-such-flag"])
    assert p.returncode != 0


# --- HTTP ---------------------------------------------------------------------------------

def test_healthz(moatd):
    status, headers, body = moatd.http_get("/healthz")
    assert status == 200
    assert "json" in {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    doc = json.loads(body)
    assert doc["status"] == "ok"


def test_http_not_found(moatd):
    status, _, body = moatd.http_get("/no/such/thing")
    assert status == 404
    doc = json.loads(body)
    assert doc["error"]["code"] == "not_found"


def test_banner_hostname_default(moatd_factory):
    d = moatd_factory(hostname=None)
    with d.raw(banner=False) as c:
        r = c.expect(220)
    assert r.lines[0] in (f"220 {socket.gethostname()} ESMTP Moat",
                          f"220 {socket.getfqdn()} ESMTP Moat"), r.lines


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_drops_to_user(moatd_factory):
    import pwd
    import shutil
    import tempfile
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    # The data dir must be reachable by the unprivileged user: not under pytest's 0700 tmp.
    base = tempfile.mkdtemp(prefix="moat-user-", dir="/tmp")
    try:
        os.chmod(base, 0o755)
        data = os.path.join(base, "data")
        os.mkdir(data)
        os.chown(data, nobody.pw_uid, nobody.pw_gid)
        d = moatd_factory(data_dir=data, user="nobody")
        status = open(f"/proc/{d.proc.pid}/status").read()
        uids = re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()
        gids = re.search(r"^Gid:\s+(.*)$", status, re.M).group(1).split()
        assert uids == [str(nobody.pw_uid)] * 4, status
        assert gids == [str(nobody.pw_gid)] * 4, status
        qid, body = send_one(d)
        assert strip_received(d.spool_message(qid)) == body
        assert os.stat(d.queue_dir() / qid).st_uid == nobody.pw_uid
        assert d.stop() == 0
    finally:
        shutil.rmtree(base, ignore_errors=True)
