"""Fixtures for the moatd integration tests.

Every test talks to the real moatd binary through real sockets. The binary is
$MOATD_BIN (ctest sets it to the build under test) or build/moatd in the repo.

    def test_x(moatd):                 # one daemon with the default test config
        s = moatd.raw(); s.expect(220) # raw socket client
    def test_y(moatd_factory):         # several daemons / custom config
        d = moatd_factory(max_recipients=3)

Every daemon started here is stopped at teardown with SIGTERM; it must exit 0
within 15 s and its log must not contain sanitizer reports. Every socket and
subprocess has a timeout.
"""

import json
import os
import re
import select
import signal
import smtplib
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MOATD_BIN = os.environ.get("MOATD_BIN") or str(REPO / "build" / "moatd")

READY_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0
IO_TIMEOUT = 10.0
HOSTNAME = "moat.test"

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer")
QID_RE = re.compile(r"^[0-9A-Fa-f]{16}$")

READY_RE = re.compile(r" ready .*\bsmtp=")


def wait_for(pred, timeout=3.0, interval=0.05):
    """Polls pred() until it returns a truthy value or timeout passes; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def split_hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def parse_ready(line):
    """Parses the 'ready' log line into ([(host, port), ...] smtp, (host, port) http)."""
    m_smtp = re.search(r"\bsmtp=(\S+)", line)
    m_http = re.search(r"\bhttp=(\S+)", line)
    assert m_smtp, f"no smtp= in ready line: {line!r}"
    smtp = [split_hostport(x) for x in m_smtp.group(1).split(",") if x]
    http = split_hostport(m_http.group(1)) if m_http else None
    return smtp, http


def sanitizer_reports(text):
    return [m for m in SANITIZER_MARKERS if m in text]


def stuff(body):
    """Dot-stuffs a CRLF message body and appends the end-of-data marker."""
    assert isinstance(body, bytes)
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    out = []
    for line in body.split(b"\r\n")[:-1] if body else []:
        if line.startswith(b"."):
            line = b"." + line
        out.append(line + b"\r\n")
    return b"".join(out) + b".\r\n"


def strip_received(data):
    """Removes the one prepended Received: header (with its folded lines); returns the rest."""
    assert data.startswith(b"Received:"), f"spool file does not start with Received: {data[:80]!r}"
    lines = data.split(b"\r\n")
    i = 1
    while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
        i += 1
    rest = b"\r\n".join(lines[i:])
    assert not rest.startswith(b"Received:"), "more than one Received: header prepended"
    return rest


class Reply:
    def __init__(self, lines):
        self.lines = lines  # decoded text lines without CRLF
        self.code = int(lines[-1][:3])

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def first(self):
        return self.lines[0]

    def __repr__(self):
        return f"Reply({self.lines!r})"


class RawSMTP:
    """A raw-socket SMTP client that sends exact bytes and reads complete replies."""

    def __init__(self, port, host="127.0.0.1", timeout=IO_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line):
        """Sends one command line (CRLF appended) and returns its reply."""
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.readreply()

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def readline(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n" not in self.buf:
            if self.eof:
                raise AssertionError(f"connection closed; unterminated data {self.buf!r}")
            try:
                self._fill(deadline)
            except socket.timeout:
                raise AssertionError(f"timed out waiting for a reply line; have {self.buf!r}")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def readreply(self, timeout=None):
        """Reads one complete, possibly multi-line, SMTP reply."""
        lines = []
        while True:
            raw = self.readline(timeout)
            text = raw.decode("utf-8", "replace")
            assert re.match(r"^\d{3}([ -]|$)", text), f"malformed reply line {raw!r} after {lines!r}"
            if lines:
                assert text[:3] == lines[0][:3], f"code changed inside reply: {lines!r} + {text!r}"
            lines.append(text)
            if len(text) == 3 or text[3] == " ":
                return Reply(lines)

    def expect(self, code, timeout=None):
        """Reads a reply and asserts its code: 250, or '250 2.1.0' to also check the enhanced code."""
        reply = self.readreply(timeout)
        check_reply(reply, code)
        return reply

    def pending(self, timeout=0.3):
        """True if reply bytes (or EOF) are available within timeout."""
        if self.buf or self.eof:
            return True
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)

    def expect_closed(self, timeout=5.0):
        """Asserts that the server closes the connection without sending anything more."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            try:
                self._fill(deadline)
            except socket.timeout:
                raise AssertionError("server did not close the connection")
        assert self.buf == b"", f"unexpected data before close: {self.buf!r}"

    def ehlo(self, name="client.example"):
        return self.expect_cmd(f"EHLO {name}", 250)

    def transaction(self, sender, rcpts, body, mail_params=""):
        """MAIL, RCPT..., DATA, body; asserts the envelope is accepted; returns the final reply."""
        self.expect_cmd(f"MAIL FROM:<{sender}>{(' ' + mail_params) if mail_params else ''}", "250 2.1.0")
        for r in rcpts:
            self.expect_cmd(f"RCPT TO:<{r}>", "250 2.1.5")
        self.expect_cmd("DATA", 354)
        self.send(stuff(body))
        return self.readreply()

    def expect_cmd(self, line, code):
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        reply = self.readreply()
        check_reply(reply, code, line)
        return reply


def check_reply(reply, code, sent=None):
    what = f" to {sent!r}" if sent is not None else ""
    if isinstance(code, int):
        assert reply.code == code, f"got {reply.lines!r}{what}, want {code}"
    else:
        parts = code.split()
        assert reply.code == int(parts[0]), f"got {reply.lines!r}{what}, want {code}"
        for line in reply.lines:
            assert line[4:].startswith(" ".join(parts[1:])), f"got {reply.lines!r}{what}, want {code}"


def qid_of(reply):
    """The queue id: last word of a '250 2.0.0 Ok: queued as <QID>' reply."""
    check_reply(reply, "250 2.0.0")
    qid = reply.lines[-1].split()[-1]
    assert QID_RE.match(qid), f"bad queue id in {reply.lines!r}"
    return qid


class Moatd:
    """One moatd process started with its own config file and temp dir."""

    def __init__(self, workdir, conf, args=(), log_file=None):
        self.workdir = Path(workdir)
        self.conf = conf
        self.conf_path = self.workdir / "moatd.conf"
        self.stderr_path = self.workdir / "moatd.stderr"
        self.log_file = Path(log_file) if log_file else None
        self.data_dir = Path(conf["data_dir"])
        self.args = list(args)
        self.proc = None
        self.returncode = None
        self.killed = False
        self.smtp_addrs = []
        self.http_addr = None
        self.ready_line = None

    # --- process control -------------------------------------------------------------------
    def write_conf(self):
        lines = ["# written by tests/integration/conftest.py"]
        for k, v in self.conf.items():
            lines.append(f"{k} = {v}")
        self.conf_path.write_text("\n".join(lines) + "\n")

    def start(self):
        self.write_conf()
        self.stderr_fh = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [MOATD_BIN, "-c", str(self.conf_path)] + self.args,
            stdin=subprocess.DEVNULL, stdout=self.stderr_fh, stderr=subprocess.STDOUT,
            cwd=str(self.workdir))
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            line = self._find_ready()
            if line:
                self.ready_line = line
                self.smtp_addrs, self.http_addr = parse_ready(line)
                return self
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                self.killed = True  # already reported here; teardown need not repeat it
                raise AssertionError(
                    f"moatd exited with {self.returncode} before ready:\n{self.log_text()[-4000:]}")
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait(timeout=STOP_TIMEOUT)
        self.returncode = self.proc.returncode
        self.killed = True
        raise AssertionError(f"moatd not ready after {READY_TIMEOUT}s:\n{self.log_text()[-4000:]}")

    def _find_ready(self):
        text = self.log_text()
        # Only complete lines: the daemon may be in the middle of writing this one.
        text = text[:text.rfind("\n") + 1]
        for line in text.splitlines():
            if READY_RE.search(line) and "smtp=" in line:
                return line
        return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM and wait; returns the exit status (negative: killed by that signal)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT)
                self.killed = True
                raise AssertionError(f"moatd did not exit within {timeout}s of SIGTERM")
        self.returncode = self.proc.returncode
        return self.returncode

    def kill9(self):
        self.proc.kill()
        self.proc.wait(timeout=STOP_TIMEOUT)
        self.returncode = self.proc.returncode
        self.killed = True

    def log_text(self):
        text = ""
        for p in (self.stderr_path, self.log_file):
            if p is not None and p.exists():
                text += p.read_bytes().decode("utf-8", "replace")
        return text

    # --- clients ----------------------------------------------------------------------------
    @property
    def smtp_port(self):
        return self.smtp_addrs[0][1]

    @property
    def http_port(self):
        return self.http_addr[1]

    def smtp(self, port=None):
        return smtplib.SMTP("127.0.0.1", port or self.smtp_port, timeout=IO_TIMEOUT)

    def raw(self, port=None, banner=True):
        """A RawSMTP connection; with banner=True the 220 banner is read and checked."""
        c = RawSMTP(port or self.smtp_port)
        if banner:
            c.expect(220)
        return c

    def http_get(self, path):
        """GET on the HTTP listener; returns (status, headers, body bytes)."""
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=IO_TIMEOUT)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    # --- storage ---------------------------------------------------------------------------
    @property
    def db_path(self):
        return self.data_dir / "moat.db"

    def db(self):
        """Read-only sqlite3 connection to <data_dir>/moat.db."""
        return open_db_ro(self.db_path)

    def query(self, sql, args=()):
        con = self.db()
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def queue_dir(self):
        return self.data_dir / "spool" / "queue"

    def incoming_dir(self):
        return self.data_dir / "spool" / "incoming"

    def queue_files(self):
        d = self.queue_dir()
        return sorted(p.name for p in d.iterdir()) if d.exists() else []

    def incoming_files(self):
        """Files of messages being received; the empty files moatd creates ahead are not."""
        d = self.incoming_dir()
        if not d.exists():
            return []
        out = []
        for p in d.iterdir():
            try:
                if p.stat().st_size > 0 or not p.name.startswith("t"):
                    out.append(p.name)
            except FileNotFoundError:
                pass
        return sorted(out)

    def spool_message(self, qid):
        return (self.queue_dir() / qid).read_bytes()

    def log_rows(self, where="1", args=(), want=1, timeout=3.0):
        """Polls message_log until at least `want` rows match; returns them as dicts."""
        def fetch():
            con = self.db()
            con.row_factory = sqlite3.Row
            try:
                rows = [dict(r) for r in con.execute(
                    f"SELECT * FROM message_log WHERE {where} ORDER BY id", args)]
            finally:
                con.close()
            return rows if len(rows) >= want else None
        # On time-out return what there is, so that the caller's assertion shows it.
        return wait_for(fetch, timeout=timeout) or fetch_all_rows(self, where, args)

    def assert_nothing_queued(self):
        assert self.incoming_files() == [], f"left in spool/incoming: {self.incoming_files()}"
        assert self.queue_files() == [], f"unexpected spool/queue files: {self.queue_files()}"
        assert self.query("SELECT qid FROM queue_message") == []
        assert self.query("SELECT qid, rcpt FROM queue_rcpt") == []


def fetch_all_rows(d, where, args):
    con = d.db()
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(f"SELECT * FROM message_log WHERE {where} ORDER BY id", args)]
    finally:
        con.close()


def open_db_ro(path):
    assert Path(path).exists(), f"{path} does not exist"
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)


def run_moatd(args, timeout=15, cwd=None):
    """Runs moatd to completion (for exit-status tests); returns CompletedProcess (text)."""
    proc = subprocess.run([MOATD_BIN] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout, cwd=cwd)
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    reports = sanitizer_reports(out + err)
    assert not reports, f"sanitizer report from moatd {args}: {reports}\n{err[-4000:]}"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def default_conf(workdir):
    return {
        "data_dir": str(Path(workdir) / "data"),
        "hostname": HOSTNAME,
        "log": "stderr",
        "log_level": "info",
        "smtp_listen": "127.0.0.1:0",
        "http_listen": "127.0.0.1:0",
        "shutdown_timeout": "3s",
        "delivery": "no",  # queue runner off unless a test turns it on (tests/integration/peers_delivery.py)
    }


def local_domains_seed(*domains):
    """seed_policy for a moatd that receives for domains (routed to `downstream`) and takes
    any local part there (recipient_verify off: these tests have no directory)."""
    return [("add", "local_domain", dom) for dom in domains] + \
        [("set", "recipient_verify", "no")]


@pytest.fixture
def moatd_factory(tmp_path):
    """Starts moatd instances: factory(args=(), data_dir=None, **config_overrides) -> Moatd.

    A config value of None removes that key from the default test config.  The override
    seed_policy=[(args...), ...] runs `moatd policy <args>` on a new data directory before the
    start, so that the first policy snapshot already has them (see local_domains_seed).
    """
    instances = []
    counter = [0]

    def start(args=(), data_dir=None, **overrides):
        counter[0] += 1
        workdir = tmp_path / f"moatd{counter[0]}"
        workdir.mkdir()
        seed = overrides.pop("seed_policy", ())
        conf = default_conf(workdir)
        if data_dir is not None:
            conf["data_dir"] = str(data_dir)
        for k, v in overrides.items():
            if v is None:
                conf.pop(k, None)
            else:
                conf[k] = v
        log = conf.get("log", "stderr")
        log_file = log if log not in ("stderr", "syslog") else None
        d = Moatd(workdir, conf, args, log_file)
        # Seeded once: a restart on the same data directory keeps what is there.
        for cmd in seed if not (d.data_dir / "moat.db").exists() else ():
            proc = subprocess.run([MOATD_BIN, "policy", "--data-dir", str(d.data_dir)]
                                  + [str(a) for a in cmd], stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=15, text=True)
            assert proc.returncode == 0, f"moatd policy {cmd}: {proc.stderr}"
        instances.append(d)
        d.start()
        return d

    yield start

    errors = []
    for d in instances:
        if d.proc is None:
            continue
        if d.alive():
            try:
                rc = d.stop()
                if rc != 0:
                    errors.append(f"moatd exited with {rc} after SIGTERM (want 0)")
            except AssertionError as e:
                errors.append(str(e))
        elif not d.killed and d.proc.returncode != 0:
            # Died on its own during the test (crash, abort) or failed a stop the test ignored.
            errors.append(f"moatd exited with {d.proc.returncode} during the test (want 0):\n"
                          f"{d.log_text()[-4000:]}")
        if getattr(d, "stderr_fh", None):
            d.stderr_fh.close()
        reports = sanitizer_reports(d.log_text())
        if reports:
            errors.append(f"sanitizer report in moatd log: {reports}\n{d.log_text()[-6000:]}")
    if errors:
        pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture
def moatd(moatd_factory):
    """One moatd with the default test config."""
    return moatd_factory()


def message(subject="test", body_lines=("Hello.",), extra_headers=()):
    """A small RFC 5322 message with CRLF line endings (bytes)."""
    lines = [
        b"From: Sender <sender@example.net>",
        b"To: Rcpt <rcpt@example.org>",
        b"Subject: " + subject.encode(),
        b"Message-ID: <" + str(time.time_ns()).encode() + b"@example.net>",
    ]
    lines += [h if isinstance(h, bytes) else h.encode() for h in extra_headers]
    lines.append(b"")
    lines += [l if isinstance(l, bytes) else l.encode() for l in body_lines]
    return b"\r\n".join(lines) + b"\r\n"


def json_list(s):
    v = json.loads(s)
    assert isinstance(v, list), f"not a JSON array: {s!r}"
    return v
