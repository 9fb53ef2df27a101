"""HTTPS on the API listener (http_tls_cert / http_tls_key): login over TLS sets a Secure
cookie; plain HTTP to the TLS port gets no API answer; a missing key file is fatal at start."""

import ssl
import subprocess

import pytest

from api_client import ADMIN_PASSWORD, Api, api_moatd, raw_http  # noqa: F401
from conftest import run_moatd


@pytest.fixture
def cert(tmp_path):
    key, crt = tmp_path / "api.key", tmp_path / "api.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def test_https_login_secure_cookie(api_moatd, cert):
    crt, key = cert
    d = api_moatd(http_tls_cert=str(crt), http_tls_key=str(key))
    ctx = ssl.create_default_context(cafile=str(crt))
    ctx.check_hostname = False
    api = Api(d.http_port, tls_context=ctx)
    assert api.get("/healthz").expect(200).json["status"] == "ok"
    r = api.login("admin", ADMIN_PASSWORD)
    sc = r.headers["set-cookie"]
    assert "; Secure" in sc and "HttpOnly" in sc and "SameSite=Strict" in sc
    api.get("/api/v1/account").expect(200)
    # Plain HTTP on the TLS port: no HTTP answer.
    out = raw_http(d.http_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=3)
    assert not out.startswith(b"HTTP/1.1 200")


def test_tls_key_missing_is_fatal(tmp_path, cert, monkeypatch):
    crt, _ = cert
    monkeypatch.setenv("MOAT_ADMIN_PASSWORD", ADMIN_PASSWORD)
    conf = tmp_path / "m.conf"
    conf.write_text(f"data_dir = {tmp_path}/data\nsmtp_listen = 127.0.0.1:0\n"
                    f"http_listen = 127.0.0.1:0\ndelivery = no\nhttp_tls_cert = {crt}\n"
                    f"http_tls_key = {tmp_path}/missing.key\n")
    p = run_moatd(["-c", conf])
    assert p.returncode == 1 and "missing.key" in p.stderr
    conf.write_text(f"data_dir = {tmp_path}/data\nsmtp_listen = 127.0.0.1:0\n"
                    f"http_listen = 127.0.0.1:0\ndelivery = no\nhttp_tls_cert = {crt}\n")
    p = run_moatd(["-c", conf])
    assert p.returncode == 1 and "go together" in p.stderr
