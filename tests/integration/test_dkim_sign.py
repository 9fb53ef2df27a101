"""DKIM signing: keys made by `moatd dkim generate` or the API, messages signed by
`moatd dkim sign` and by moatd on delivery, verified by an independent implementation
(Debian's python3-dkim, dkimpy) given the DNS record moatd told us to publish.

Also: only local domains get keys (422 naming "domain"), a selector is taken once per
domain (409), the private key never appears in an answer or the log, writes bump the
policy generation and are audited, disabled keys do not sign, the newest enabled key of
a domain signs, a key for a parent domain signs its subdomains."""

import json
import subprocess

import dkim
import pytest

from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401 (fixture)
from conftest import MOATD_BIN, local_domains_seed, message, wait_for
from peers_delivery import Downstream, delivery_conf, send
from peers_policy import applied

MSG = (b"From: Alice <alice@example.com>\r\n"
       b"To: Bob <bob@example.org>\r\n"
       b"Subject: quarterly figures\r\n"
       b"Date: Thu, 01 Jan 2026 10:00:00 +0000\r\n"
       b"Message-ID: <figures-1@example.com>\r\n"
       b"MIME-Version: 1.0\r\n"
       b"Content-Type: text/plain; charset=utf-8\r\n"
       b"\r\n"
       b"Hello Bob,\r\n\r\n  the figures   are attached.\t\r\n\r\n\r\n")


def dkim_cli(data_dir, *args, want=0, stdin=None):
    p = subprocess.run([MOATD_BIN, "dkim"] + [str(a) for a in args] + ["--data-dir", str(data_dir)],
                       capture_output=True, timeout=60, input=stdin)
    assert p.returncode == want, \
        f"moatd dkim {args}: rc={p.returncode}\n{p.stdout.decode()}\n{p.stderr.decode()}"
    return p


def seed(data_dir, *domains):
    for cmd in local_domains_seed(*domains):
        p = subprocess.run([MOATD_BIN, "policy", "--data-dir", str(data_dir)] + list(cmd),
                           capture_output=True, text=True, timeout=15)
        assert p.returncode == 0, p.stderr


def generate(data_dir, domain, selector, *opts):
    out = dkim_cli(data_dir, "generate", domain, selector, *opts).stdout.decode()
    assert out.startswith("key "), out
    key_id = int(out.split()[1])
    shown = json.loads(dkim_cli(data_dir, "show", key_id).stdout)
    # The zone-file line printed names the record and holds the value in <=255-octet strings.
    assert f"{selector}._domainkey.{domain} IN TXT \"v=DKIM1;" in out, out
    return shown


def dns_of(*keys):
    """dkimpy's dnsfunc answering with the records moatd made (and nothing else)."""
    records = {k["record_name"] + ".": k["record_value"].encode() for k in keys}

    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        return records.get(n if n.endswith(".") else n + ".")
    return dnsfunc


def sign_cli(data_dir, tmp_path, msg, name="msg.eml"):
    f = tmp_path / name
    f.write_bytes(msg)
    return dkim_cli(data_dir, "sign", f).stdout


def tags(signed):
    head = signed.split(b"\r\n\r\n", 1)[0].replace(b"\r\n\t", b"").replace(b"\n\t", b"")
    line = [l for l in head.splitlines() if l.lower().startswith(b"dkim-signature:")][0]
    out = {}
    for part in line.split(b":", 1)[1].split(b";"):
        if b"=" in part:
            k, v = part.split(b"=", 1)
            out[k.strip().decode()] = v.strip().decode()
    return out


@pytest.mark.parametrize("algorithm", ["rsa-sha256", "ed25519-sha256"])
def test_cli_signed_message_verifies_with_dkimpy(tmp_path, algorithm):
    data = tmp_path / "data"
    seed(data, "example.com", "example.org")
    key = generate(data, "example.com", "mail2026", "--algorithm", algorithm)
    assert key["algorithm"] == algorithm and key["enabled"] is True
    assert key["bits"] == (2048 if algorithm == "rsa-sha256" else 256)
    assert key["record_value"].startswith(
        "v=DKIM1; k=rsa; p=" if algorithm == "rsa-sha256" else "v=DKIM1; k=ed25519; p=")
    assert "PRIVATE" not in json.dumps(key)

    signed = sign_cli(data, tmp_path, MSG)
    assert signed.startswith(b"DKIM-Signature: v=1; a=" + algorithm.encode())
    assert signed.endswith(MSG)
    t = tags(signed)
    assert t["d"] == "example.com" and t["s"] == "mail2026" and t["c"] == "relaxed/relaxed"
    assert t["h"].split(":") == ["from", "from", "to", "to", "subject", "subject", "date",
                                 "date", "message-id", "message-id", "mime-version",
                                 "mime-version", "content-type", "content-type"]
    assert dkim.verify(signed, dnsfunc=dns_of(key)), "dkimpy did not verify the signature"

    # What relaxed canonicalisation forgives, and what it does not.
    assert dkim.verify(signed.replace(b"Subject: quarterly", b"Subject:   quarterly"),
                       dnsfunc=dns_of(key))
    assert not dkim.verify(signed.replace(b"figures   are", b"numbers   are"),
                           dnsfunc=dns_of(key))
    assert not dkim.verify(signed.replace(b"Date:", b"Subject: buy now\r\nDate:"),
                           dnsfunc=dns_of(key)), "an added Subject must break the signature"
    # Another key's record does not verify it.
    other = generate(data, "example.org", "x", "--algorithm", algorithm)
    wrong = dict(key, record_value=other["record_value"])
    assert not dkim.verify(signed, dnsfunc=dns_of(wrong))


def test_cli_lf_message_and_parent_domain(tmp_path):
    data = tmp_path / "data"
    seed(data, "example.com")
    key = generate(data, "example.com", "s1", "--algorithm", "ed25519-sha256")
    msg = (b"From: alerts@mail.sub.example.com\nTo: ops@example.net\nSubject: disk\n\n"
           b"disk 91% full\n")
    signed = sign_cli(data, tmp_path, msg)
    assert b"\r\n" not in signed, "the field takes the message's own line ends"
    assert tags(signed.replace(b"\n", b"\r\n"))["d"] == "example.com"
    assert dkim.verify(signed.replace(b"\n", b"\r\n"), dnsfunc=dns_of(key))


def test_cli_key_choice_errors_and_audit(tmp_path):
    data = tmp_path / "data"
    seed(data, "example.com", "*.example.net")
    # Only our own domains: not a local_domain -> refused, naming the field.
    err = dkim_cli(data, "generate", "example.org", "s1", want=1).stderr.decode()
    assert "domain" in err and "local_domain" in err, err
    err = dkim_cli(data, "generate", "example.com", "bad_selector!", want=1).stderr.decode()
    assert "selector" in err, err
    err = dkim_cli(data, "generate", "example.com", "s1", "--bits", "512", want=1).stderr.decode()
    assert "bits" in err, err
    err = dkim_cli(data, "generate", "example.com", "s1", "--algorithm", "rsa-sha1",
                   want=1).stderr.decode()
    assert "algorithm" in err, err
    # A subdomain covered by a "*.example.net" entry is ours.
    generate(data, "eu.example.net", "s1", "--bits", "1024")

    old = generate(data, "example.com", "old", "--bits", "1024")
    new = generate(data, "example.com", "new", "--algorithm", "ed25519-sha256", "--disabled")
    assert new["enabled"] is False
    err = dkim_cli(data, "generate", "example.com", "old", want=1).stderr.decode()
    assert "already" in err, err

    # A disabled key does not sign: the older enabled one does.
    assert tags(sign_cli(data, tmp_path, MSG))["s"] == "old"
    dkim_cli(data, "enable", new["id"])
    signed = sign_cli(data, tmp_path, MSG)
    assert tags(signed)["s"] == "new"
    assert dkim.verify(signed, dnsfunc=dns_of(new, old))
    dkim_cli(data, "disable", new["id"])
    dkim_cli(data, "disable", old["id"])
    p = dkim_cli(data, "sign", tmp_path / "msg.eml", want=1)
    assert b"no enabled key" in p.stderr and p.stdout == b""
    # No From: -> an error, not an unsigned copy.
    (tmp_path / "nofrom.eml").write_bytes(b"To: a@example.org\r\n\r\nx\r\n")
    dkim_cli(data, "enable", old["id"])
    assert b"From" in dkim_cli(data, "sign", tmp_path / "nofrom.eml", want=1).stderr

    # A message over max_message_size is refused, not signed in part.
    (tmp_path / "big.eml").write_bytes(MSG + b"x" * 2000 + b"\r\n")
    p = dkim_cli(data, "sign", tmp_path / "big.eml", "-o", "max_message_size=1024", want=1)
    assert b"max_message_size" in p.stderr and p.stdout == b""

    listing = dkim_cli(data, "list").stdout.decode().splitlines()
    assert listing[0].split() == ["ID", "ENABLED", "ALGORITHM", "BITS", "DOMAIN", "SELECTOR"]
    assert len(listing) == 4
    dkim_cli(data, "delete", new["id"])
    assert b"no such key" in dkim_cli(data, "show", new["id"], want=1).stderr
    assert b"not a key id" in dkim_cli(data, "delete", "x", want=1).stderr

    import sqlite3
    con = sqlite3.connect(data / "moat.db")
    try:
        rows = con.execute("SELECT actor, via, action FROM api_audit WHERE object_type ="
                           " 'dkim_key' ORDER BY id").fetchall()
        audit_text = " ".join(r[0] for r in con.execute(
            "SELECT coalesce(before, '') || coalesce(after, '') FROM api_audit"))
    finally:
        con.close()
    assert [r[2] for r in rows] == ["dkim_key.create"] * 3 + ["dkim_key.update"] * 4 + \
        ["dkim_key.delete"]
    assert all(r[0] == "cli" and r[1] == "system" for r in rows)
    assert "PRIVATE KEY" not in audit_text


def test_api_keys(api_moatd):
    d = api_moatd()
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    api.post("/api/v1/dkim/keys", {"domain": "example.com", "selector": "s1"}) \
        .expect(422, "invalid_value", "domain")
    api.post("/api/v1/policy/entries", {"list": "local_domain", "value": "example.com"}) \
        .expect(201)
    g0 = d.query("SELECT generation FROM policy_meta")[0][0]
    r = api.post("/api/v1/dkim/keys", {"domain": "Example.COM", "selector": "s2026",
                                       "algorithm": "ed25519-sha256"}).expect(201)
    k = r.json
    assert k["domain"] == "example.com" and k["record_name"] == "s2026._domainkey.example.com"
    assert k["record_value"].startswith("v=DKIM1; k=ed25519; p=")
    assert k["record_zone"] == '"' + k["record_value"] + '"'
    assert "PRIVATE" not in r.body.decode()
    assert d.query("SELECT generation FROM policy_meta")[0][0] > g0
    applied(d)
    assert "PRIVATE KEY" not in d.log_text()

    rsa = api.post("/api/v1/dkim/keys", {"domain": "example.com", "selector": "r1",
                                         "bits": 1024, "enabled": False}).expect(201).json
    assert rsa["algorithm"] == "rsa-sha256" and rsa["bits"] == 1024 and not rsa["enabled"]
    # A 2048-bit record is longer than one TXT string: the zone text splits it.
    big = api.post("/api/v1/dkim/keys", {"domain": "example.com", "selector": "r2"}) \
        .expect(201).json
    assert big["bits"] == 2048
    parts = big["record_zone"].split('" "')
    assert len(parts) == 2 and all(len(p.strip('"')) <= 255 for p in parts)
    assert "".join(p.strip('"') for p in parts) == big["record_value"]

    api.post("/api/v1/dkim/keys", {"domain": "example.com", "selector": "s2026"}) \
        .expect(409, "duplicate", "selector")
    api.post("/api/v1/dkim/keys", {"domain": "example.com", "selector": "a b"}) \
        .expect(422, "invalid_value", "selector")
    api.post("/api/v1/dkim/keys", {"domain": "example.com", "selector": "x",
                                   "algorithm": "rsa-sha1"}).expect(422, field="algorithm")
    api.post("/api/v1/dkim/keys", {"domain": "example.com", "selector": "x", "bits": 512}) \
        .expect(422, "invalid_value", "bits")
    api.post("/api/v1/dkim/keys", {"domain": "example.com", "selector": "x",
                                   "algorithm": "ed25519-sha256", "bits": 2048}) \
        .expect(422, "invalid_value", "bits")
    api.post("/api/v1/dkim/keys", {"domain": "example.com", "selector": "x", "private": "k"}) \
        .expect(422, field="private")
    api.post("/api/v1/dkim/keys", {"selector": "x"}).expect(422, field="domain")

    items = api.get("/api/v1/dkim/keys").expect(200).json["items"]
    assert sorted(i["selector"] for i in items) == ["r1", "r2", "s2026"]
    assert api.get(f"/api/v1/dkim/keys/{k['id']}").expect(200).json == k
    r = api.patch(f"/api/v1/dkim/keys/{k['id']}", {"enabled": False}).expect(200)
    assert r.json["enabled"] is False
    api.patch(f"/api/v1/dkim/keys/{k['id']}", {}).expect(422, field="enabled")
    api.patch("/api/v1/dkim/keys/99999", {"enabled": True}).expect(404)
    api.delete(f"/api/v1/dkim/keys/{k['id']}").expect(204)
    api.get(f"/api/v1/dkim/keys/{k['id']}").expect(404)
    api.delete(f"/api/v1/dkim/keys/{k['id']}").expect(404)
    actions = [r[0] for r in d.query("SELECT action FROM api_audit WHERE object_type ="
                                      " 'dkim_key' ORDER BY id")]
    assert actions == ["dkim_key.create"] * 3 + ["dkim_key.update", "dkim_key.delete"]

    # Administrators only.
    api.create_user("user1", "user-password-1")
    u = Api(d.http_port)
    u.login("user1", "user-password-1")
    u.get("/api/v1/dkim/keys").expect(403)
    u.post("/api/v1/dkim/keys", {"domain": "example.com", "selector": "u"}).expect(403)


@pytest.fixture
def downstream():
    ds = Downstream().start()
    yield ds
    ds.stop()


def test_relayed_mail_is_signed_on_delivery(moatd_factory, downstream):
    d = moatd_factory(**delivery_conf(downstream.addr))
    key = generate(d.data_dir, "example.net", "out", "--bits", "1024")
    applied(d)
    # From relay_net (127.0.0.0/8 by default): our own outgoing mail.
    body = message(subject="signed on the way out", body_lines=("Hello,", "", "  spaced  "))
    assert b"sender@example.net" in body
    send(d, "sender@example.net", ["rcpt@example.org"], body)
    downstream.wait_for(1)
    got = downstream.messages[0]["content"]
    assert b"DKIM-Signature:" in got, got[:600]
    assert tags(got)["d"] == "example.net" and tags(got)["s"] == "out"
    assert dkim.verify(got, dnsfunc=dns_of(key)), got[:1500]
