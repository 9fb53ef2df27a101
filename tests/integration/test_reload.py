"""SIGHUP and the service manager's protocol (docs/install.md).

SIGHUP reads the config file again: log_level, tls_cert and tls_key apply at
once, a log file is reopened, the STARTTLS pair is loaded again (a pair that
does not load leaves the old one served), other changed keys are logged as
needing a restart.  Under systemd (NOTIFY_SOCKET) moatd sends READY=1 when
ready, RELOADING=1 with MONOTONIC_USEC= and READY=1 around a reload,
STOPPING=1 on SIGTERM, and WATCHDOG=1 from its loop at half of WATCHDOG_USEC.
"""

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import IO_TIMEOUT, wait_for
from submission_util import tls_context


def served_cert(port):
    """The DER certificate moatd presents after STARTTLS."""
    s = smtplib.SMTP("127.0.0.1", port, timeout=IO_TIMEOUT)
    try:
        s.ehlo("client.example")
        s.starttls(context=tls_context())
        return s.sock.getpeercert(binary_form=True)
    finally:
        s.quit()


def make_pair(directory, cn):
    """A self-signed EC pair: (cert path, key path), readable by its owner only."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", f"/CN={cn}",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    os.chmod(key, 0o600)
    return cert, key


def der_of(cert_path):
    p = subprocess.run(["openssl", "x509", "-in", str(cert_path), "-outform", "DER"],
                       check=True, capture_output=True, timeout=30)
    return p.stdout


def count(d, text):
    return d.log_text().count(text)


def hup_and_wait(d):
    """SIGHUP and wait for the reload's last line; returns the log text of that reload."""
    before = count(d, " main reloaded")
    mark = len(d.log_text())
    d.signal(signal.SIGHUP)
    assert wait_for(lambda: count(d, " main reloaded") > before, timeout=5), \
        d.log_text()[mark:]
    return d.log_text()[mark:]


def test_sighup_serves_a_replaced_certificate(moatd_factory):
    d = moatd_factory()
    tls_dir = d.data_dir / "tls"
    old = served_cert(d.smtp_port)
    assert old == der_of(tls_dir / "cert.pem")
    # The self-signed pair replaced in place, as a renewal would.
    new_cert, _ = make_pair(tls_dir, "renewed.example")
    new = der_of(new_cert)
    assert new != old
    out = hup_and_wait(d)
    assert " main reloading" in out
    assert " main reload tls certificate loaded" in out
    assert " main log reopened" in out
    assert served_cert(d.smtp_port) == new
    assert d.alive()


def test_sighup_with_a_broken_certificate_keeps_the_old_one(moatd_factory, tmp_path):
    cert, key = make_pair(tmp_path / "pair", "first.example")
    d = moatd_factory(tls_cert=str(cert), tls_key=str(key))
    first = served_cert(d.smtp_port)
    assert first == der_of(cert)
    cert.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    out = hup_and_wait(d)
    assert "main error: reload tls failed error=" in out
    assert "keeping the old certificate" in out
    assert served_cert(d.smtp_port) == first
    # Fixed: the next reload takes the new pair.
    make_pair(tmp_path / "pair", "second.example")
    out = hup_and_wait(d)
    assert " main reload tls certificate loaded" in out
    assert served_cert(d.smtp_port) == der_of(cert) != first


def test_sighup_rereads_the_config_file(moatd_factory):
    d = moatd_factory()
    text = d.conf_path.read_text()
    # log_level is live; max_recipients needs a restart and says so.
    d.conf_path.write_text(text.replace("log_level = info", "log_level = error")
                           + "max_recipients = 7\n")
    out = hup_and_wait(d)
    assert "main warn: reload key=max_recipients changed; needs a restart" in out
    assert "key=log_level" not in out
    # At level error the info line of the next reload is gone; notices stay.
    out = hup_and_wait(d)
    assert " main reloading" in out
    assert " main log reopened" not in out
    # A config with an error changes nothing and moatd keeps running.
    d.conf_path.write_text(text + "frobnicate = 1\n")
    out = hup_and_wait(d)
    assert "main error: reload config error=" in out and "frobnicate" in out
    assert "keeping the running configuration" in out
    assert d.alive()
    # The running config was not replaced: still at level error.
    assert " main reload tls certificate loaded" not in out


def test_sighup_reopens_the_log_file(moatd_factory, tmp_path):
    log = tmp_path / "moatd.log"
    d = moatd_factory(log=str(log))
    assert wait_for(lambda: log.exists() and " ready " in log.read_text(), timeout=5)
    rotated = tmp_path / "moatd.log.1"
    os.rename(log, rotated)
    d.signal(signal.SIGHUP)
    assert wait_for(lambda: log.exists() and " main log reopened" in log.read_text(), timeout=5)
    assert " main log reopened" not in rotated.read_text()


class Notify:
    """The service manager's end of NOTIFY_SOCKET: a datagram socket on a short path."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="moat-n-", dir="/tmp")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.messages = []

    def drain(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (socket.timeout, BlockingIOError):
                return self.messages

    def wait(self, pred, timeout=5.0):
        assert wait_for(lambda: pred(self.drain()), timeout=timeout), self.messages
        return self.messages

    def close(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify(monkeypatch):
    n = Notify()
    monkeypatch.setenv("NOTIFY_SOCKET", n.path)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield n
    n.close()


def test_notify_ready_reloading_watchdog_stopping(moatd_factory, notify, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # pings every 200 ms
    d = moatd_factory()
    notify.wait(lambda m: any(x.startswith("READY=1\n") for x in m))
    ready = [x for x in notify.messages if x.startswith("READY=1\n")][0]
    lines = ready.split("\n")
    assert any(l.startswith(f"STATUS=ready smtp=127.0.0.1:{d.smtp_port} http=")
               for l in lines), ready
    assert f"MAINPID={d.proc.pid}" in lines
    # Watchdog pings keep coming from the loop, one datagram each.
    notify.wait(lambda m: m.count("WATCHDOG=1") >= 3, timeout=3)
    assert "watchdog interval_ms=200" in d.log_text()
    n_ready = sum(x.startswith("READY=1") for x in notify.messages)
    d.signal(signal.SIGHUP)
    notify.wait(lambda m: sum(x.startswith("READY=1") for x in m) > n_ready)
    rel = [x for x in notify.messages if x.startswith("RELOADING=1")]
    assert len(rel) == 1, notify.messages
    key, _, usec = rel[0].split("\n")[1].partition("=")
    assert key == "MONOTONIC_USEC"
    # CLOCK_MONOTONIC, the clock systemd compares it with.
    assert abs(int(usec) - time.monotonic_ns() // 1000) < 10_000_000
    # RELOADING=1 comes before the READY=1 that ends the reload.
    msgs = [x for x in notify.messages if x != "WATCHDOG=1"]
    assert msgs.index(rel[0]) < len(msgs) - 1 and msgs[-1].startswith("READY=1")
    assert d.stop() == 0
    notify.drain()
    assert "STOPPING=1" in notify.messages


def test_watchdog_for_another_process_is_ignored(moatd_factory, notify, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    d = moatd_factory()
    notify.wait(lambda m: any(x.startswith("READY=1") for x in m))
    time.sleep(0.5)  # five would-be ping intervals: none may come
    assert "WATCHDOG=1" not in notify.drain()
    assert "watchdog interval" not in d.log_text()
    assert d.stop() == 0


def test_no_notify_socket_outside_systemd(moatd_factory, monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    d = moatd_factory()
    assert "sd_notify" not in d.log_text()
    assert d.stop() == 0
