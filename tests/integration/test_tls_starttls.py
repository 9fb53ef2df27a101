"""STARTTLS on the SMTP listeners (docs/submission.md).

The embedded default makes a self-signed pair in <data_dir>/tls/ on first run; TLS 1.2+;
STARTTLS advertised only before TLS; bytes pipelined after STARTTLS are refused
(CVE-2011-0411) and the session starts over after the handshake.
"""

import socket
import ssl
import time

import pytest

from conftest import IO_TIMEOUT, message, wait_for
from submission_util import smtp_tls, tls_context


def test_self_signed_pair_generated_and_starttls_advertised(moatd):
    tls = moatd.data_dir / "tls"
    assert (tls / "cert.pem").exists() and (tls / "key.pem").exists()
    assert (tls / "key.pem").stat().st_mode & 0o077 == 0
    s = moatd.smtp()
    code, text = s.ehlo("client.example")
    assert code == 250 and b"STARTTLS" in text
    s.quit()


def test_starttls_handshake_then_session_starts_over(moatd):
    s = moatd.smtp()
    s.ehlo("client.example")
    s.starttls(context=tls_context())
    assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
    # HELO state is gone: MAIL before EHLO is refused.
    code, _ = s.docmd("MAIL FROM:<a@example.net>")
    assert code == 503
    code, text = s.ehlo("client.example")
    assert code == 250
    assert b"STARTTLS" not in text  # advertised only before TLS
    code, _ = s.docmd("STARTTLS")
    assert code == 502
    s.quit()


def test_tls_version_and_cipher_in_received_and_log(moatd):
    s = smtp_tls(moatd.smtp_port)
    s.sendmail("sender@example.net", ["rcpt@example.org"], message())
    version = s.sock.version()
    s.quit()
    rows = moatd.log_rows("result = 'accepted'", timeout=5)
    assert rows and rows[0]["tls"].startswith(f"version={version} cipher="), rows
    files = wait_for(lambda: moatd.queue_files(), timeout=5)
    data = (moatd.queue_dir() / files[0]).read_bytes()
    assert b"with ESMTPS id" in data
    assert f"(version={version} cipher=".encode() in data


def test_tls_below_1_2_refused(moatd):
    s = moatd.smtp()
    s.ehlo("client.example")
    ctx = tls_context()
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with pytest.raises((ssl.SSLError, OSError)):
        s.starttls(context=ctx)
    s.close()


def _raw_after_banner(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"220")
    sock.sendall(b"EHLO client.example\r\n")
    while True:
        line = f.readline()
        assert line.startswith(b"250")
        if line[3:4] == b" ":
            break
    return sock, f


def test_pipelined_command_after_starttls_is_not_executed(moatd):
    """"STARTTLS\\r\\nRSET\\r\\n" in one write: refused and closed, RSET never answered."""
    sock, f = _raw_after_banner(moatd.smtp_port)
    sock.sendall(b"STARTTLS\r\nRSET\r\n")
    line = f.readline()
    assert line.startswith(b"554 5.5.1"), line
    sock.settimeout(5)
    assert f.readline() == b""  # closed; no "250" for the injected RSET
    sock.close()
    assert "STARTTLS PIPELINING" in moatd.log_text()


def test_injection_with_mail_from_not_executed(moatd):
    sock, f = _raw_after_banner(moatd.smtp_port)
    sock.sendall(b"STARTTLS\r\nMAIL FROM:<evil@example.net>\r\n")
    assert f.readline().startswith(b"554")
    sock.close()
    time.sleep(0.2)
    assert not moatd.query("SELECT 1 FROM message_log WHERE sender='evil@example.net'"
                           " AND result='accepted'")


def test_starttls_with_argument_and_in_transaction(moatd):
    s = moatd.smtp()
    s.ehlo("client.example")
    assert s.docmd("STARTTLS now")[0] == 501
    assert s.mail("a@example.net")[0] == 250
    assert s.docmd("STARTTLS")[0] == 503
    s.quit()


def test_tls_handshake_garbage_closes_cleanly(moatd):
    sock, f = _raw_after_banner(moatd.smtp_port)
    sock.sendall(b"STARTTLS\r\n")
    assert f.readline().startswith(b"220")
    sock.sendall(b"this is not a TLS ClientHello\r\n" * 4)
    sock.settimeout(5)
    try:
        rest = sock.recv(4096)
    except (ConnectionResetError, socket.timeout):
        rest = b""
    assert b"250" not in rest
    sock.close()
    assert wait_for(lambda: "TLS HANDSHAKE FAILED" in moatd.log_text(), timeout=5)
    # the daemon still serves
    s = moatd.smtp()
    assert s.ehlo("client.example")[0] == 250
    s.quit()


def test_configured_cert_and_key(moatd_factory, tmp_path):
    first = moatd_factory()
    cert = first.data_dir / "tls" / "cert.pem"
    key = first.data_dir / "tls" / "key.pem"
    d = moatd_factory(tls_cert=str(cert), tls_key=str(key))
    assert not (d.data_dir / "tls").exists()
    s = smtp_tls(d.smtp_port)
    der = s.sock.getpeercert(binary_form=True)
    assert ssl.DER_cert_to_PEM_cert(der).strip() == cert.read_text().strip()
    s.quit()


def test_no_handshake_after_starttls_times_out(moatd_factory):
    d = moatd_factory(idle_timeout="1s")
    sock, f = _raw_after_banner(d.smtp_port)
    sock.sendall(b"STARTTLS\r\n")
    assert f.readline().startswith(b"220")
    sock.settimeout(5)
    t0 = time.monotonic()
    assert sock.recv(100) == b""  # closed by the server, no ClientHello ever sent
    assert time.monotonic() - t0 < 4
    sock.close()
    assert wait_for(lambda: "TLS HANDSHAKE TIMEOUT" in d.log_text(), timeout=3)
    assert wait_for(lambda: "disconnect client=" in d.log_text(), timeout=3)


def test_shutdown_with_tls_sessions_open(moatd_factory):
    d = moatd_factory()
    s = smtp_tls(d.smtp_port)
    s.noop()
    sock, f = _raw_after_banner(d.smtp_port)
    sock.sendall(b"STARTTLS\r\n")  # mid-handshake
    assert f.readline().startswith(b"220")
    assert d.stop() == 0
    s.close()
    sock.close()
