"""STARTTLS toward the downstream: opportunistic (self-signed accepted), verify with the
right CA (accepted, IP SAN checked), verify with the wrong CA (deferred, nothing sent)."""

import ssl
import subprocess

import pytest

from peers_delivery import Downstream, delivery_conf, rcpt_states, send, wait_for


def make_cert(dir, name):
    key, crt = dir / f"{name}.key", dir / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=30)
    return key, crt


@pytest.fixture
def tls_downstream(tmp_path):
    key, crt = make_cert(tmp_path, "downstream")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(crt), str(key))
    ds = Downstream(tls_context=ctx).start()
    yield ds, crt
    ds.stop()


def test_opportunistic_tls(moatd_factory, tls_downstream):
    ds, _ = tls_downstream
    d = moatd_factory(**delivery_conf(ds.addr, downstream_tls="opportunistic"))
    send(d, "alice@example.net", ["bob@example.org"])
    ds.wait_for(1)
    assert ds.messages[0]["tls"] is True


def test_verify_tls_right_ca(moatd_factory, tls_downstream):
    ds, crt = tls_downstream
    d = moatd_factory(**delivery_conf(ds.addr, downstream_tls="verify",
                                      delivery_ca_file=str(crt)))
    send(d, "alice@example.net", ["bob@example.org"])
    ds.wait_for(1)
    assert ds.messages[0]["tls"] is True


def test_verify_tls_wrong_ca_defers(moatd_factory, tls_downstream, tmp_path):
    ds, _ = tls_downstream
    _, other = make_cert(tmp_path, "other")
    d = moatd_factory(**delivery_conf(ds.addr, downstream_tls="verify",
                                      delivery_ca_file=str(other)))
    qid = send(d, "alice@example.net", ["bob@example.org"])
    assert wait_for(lambda: rcpt_states(d, qid) == {"bob@example.org": "deferred"}), \
        rcpt_states(d, qid)
    assert "TLS handshake failed" in d.query(
        "SELECT last_error FROM queue_rcpt WHERE qid = ?", (qid,))[0][0]
    assert ds.messages == []


def test_verify_without_starttls_defers(moatd_factory):
    ds = Downstream().start()  # plain: no STARTTLS offered
    try:
        d = moatd_factory(**delivery_conf(ds.addr, downstream_tls="verify"))
        qid = send(d, "alice@example.net", ["bob@example.org"])
        assert wait_for(lambda: rcpt_states(d, qid) == {"bob@example.org": "deferred"})
        assert "STARTTLS not offered" in d.query(
            "SELECT last_error FROM queue_rcpt WHERE qid = ?", (qid,))[0][0]
        assert ds.messages == []
    finally:
        ds.stop()
