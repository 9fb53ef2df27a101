"""Sender authentication against a real DNS server: `moatd authcheck` (SPF, DKIM, DMARC)
with a dnsmasq on loopback serving SPF records, DKIM keys made with `openssl genpkey`
(RSA 2048 and Ed25519) and DMARC policies; messages signed here with python3-cryptography,
by an independent implementation of RFC 6376's relaxed and simple canonicalisation.

Also prints (not asserted) the CPU per message of SPF + DKIM + DMARC with the answers
cached, measured by the binary itself (`--repeat`).
"""

import base64
import hashlib
import re
import socket
import subprocess
import time

import pytest

from conftest import run_moatd
from peers_dns import free_udp_port, stop_process, wait_answering

cryptography = pytest.importorskip("cryptography")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

CLIENT = "127.0.0.1"


# ---- DKIM signing, written from RFC 6376 independently of the C code ------------------

def relaxed_header(name, value):
    value = re.sub(r"[ \t]+", " ", value.replace("\r\n", "").replace("\n", ""))
    return name.strip().lower() + ":" + value.strip()


def relaxed_body(body):
    lines = [re.sub(r"[ \t]+", " ", ln).rstrip(" ") for ln in body.split("\r\n")]
    while lines and lines[-1] == "":
        lines.pop()
    return "".join(ln + "\r\n" for ln in lines)


def simple_body(body):
    while body.endswith("\r\n\r\n"):
        body = body[:-2]
    if not body.endswith("\r\n"):
        body += "\r\n"
    return body


def dkim_sign(headers, body, key, kind, domain, selector, canon="relaxed/relaxed"):
    """headers: [(name, value)] as they appear; returns the DKIM-Signature field line."""
    hc, bc = canon.split("/")
    cbody = relaxed_body(body) if bc == "relaxed" else simple_body(body)
    bh = base64.b64encode(hashlib.sha256(cbody.encode()).digest()).decode()
    names = [n for n, _ in headers]
    alg = "rsa-sha256" if kind == "rsa" else "ed25519-sha256"
    value = (f" v=1; a={alg}; c={canon}; d={domain}; s={selector};\r\n"
             f" t={int(time.time())}; h={':'.join(names)};\r\n bh={bh};\r\n b=")
    data = ""
    for n, v in headers:
        data += (relaxed_header(n, v) if hc == "relaxed" else f"{n}:{v}") + "\r\n"
    data += relaxed_header("DKIM-Signature", value) if hc == "relaxed" else "DKIM-Signature:" + value
    if kind == "rsa":
        sig = key.sign(data.encode(), padding.PKCS1v15(), hashes.SHA256())
    else:
        sig = key.sign(hashlib.sha256(data.encode()).digest())
    b = base64.b64encode(sig).decode()
    folded = "\r\n ".join(b[i:i + 64] for i in range(0, len(b), 64))
    return "DKIM-Signature:" + value + folded


def message(headers, body, sig=None):
    text = ""
    if sig is not None:
        text += sig + "\r\n"
    for n, v in headers:
        text += f"{n}:{v}\r\n"
    return (text + "\r\n" + body).encode()


def txt_strings(s):
    """A TXT value longer than 255 octets as several strings (dnsmasq: comma separated)."""
    return ",".join(s[i:i + 250] for i in range(0, len(s), 250))


# ---- DNS ----------------------------------------------------------------------------

class Blackhole:
    """A UDP socket that never answers: the name server of a zone that times out."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def start_dnsmasq(args):
    for _ in range(5):
        port = free_udp_port()
        argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                "--listen-address=127.0.0.1", "--bind-interfaces", f"--port={port}",
                "--no-resolv", "--no-hosts", "--user=root", "--group=root", "--pid-file=",
                "--local=/test/", "--log-facility=-", "--local-ttl=300"] + args
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_answering(proc, port, "test", "dnsmasq")
            return proc, port
        except AssertionError:
            stop_process(proc)
    raise AssertionError("dnsmasq did not start")


def genkey(tmp_path, algorithm):
    path = tmp_path / f"{algorithm}.pem"
    argv = ["openssl", "genpkey", "-algorithm", algorithm, "-out", str(path)]
    if algorithm == "RSA":
        argv[4:4] = ["-pkeyopt", "rsa_keygen_bits:2048"]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("authcheck")
    rsa = genkey(tmp, "RSA")
    ed = genkey(tmp, "ED25519")
    rsa_pub = base64.b64encode(rsa.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    ed_pub = base64.b64encode(ed.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    hole = Blackhole()
    records = {
        "pass.test": "v=spf1 ip4:127.0.0.0/8 -all",
        "fail.test": "v=spf1 ip4:192.0.2.0/24 -all",
        "soft.test": "v=spf1 ip4:192.0.2.0/24 ~all",
        "neutral.test": "v=spf1 ?all",
        "inc.test": "v=spf1 include:inc1.test -all",
        "inc1.test": "v=spf1 include:inc2.test -all",
        "inc2.test": "v=spf1 a:host.inc2.test mx -all",
        "incfail.test": "v=spf1 include:fail.test -all",
        "incnone.test": "v=spf1 include:nospf.test -all",
        "redir.test": "v=spf1 redirect=pass.test",
        "macro.test": "v=spf1 exists:%{i}.allow.macro.test -all",
        "many.test": "v=spf1 " + " ".join(f"a:h{i}.many.test" for i in range(1, 12)) + " -all",
        "void.test": "v=spf1 a:n1.void.test a:n2.void.test a:n3.void.test -all",
        "two.test": "v=spf1 -all",
        "bad.test": "v=spf1 ip4:300.1.1.1 -all",
        "slowinc.test": "v=spf1 include:x.slow.test -all",
        "sign.test": "v=spf1 ip4:127.0.0.0/8 -all",
        "rsa._domainkey.sign.test": f"v=DKIM1; k=rsa; p={rsa_pub}",
        "ed._domainkey.sign.test": f"v=DKIM1; k=ed25519; p={ed_pub}",
        "_dmarc.sign.test": "v=DMARC1; p=reject; sp=quarantine",
        "_dmarc.other.test": "v=DMARC1; p=quarantine; aspf=s",
    }
    args = []
    for name, value in records.items():
        args.append(f"--txt-record={name},{txt_strings(value)}")
    args += ["--txt-record=two.test,v=spf1 +all",   # a second SPF record: permerror
             "--txt-record=nospf.test,some verification token",
             "--host-record=host.inc2.test,127.0.0.5",
             "--mx-host=inc2.test,mx.inc2.test,10", "--host-record=mx.inc2.test,127.0.0.6",
             "--host-record=127.0.0.9.allow.macro.test,127.0.0.2",
             f"--server=/slow.test/127.0.0.1#{hole.port}"]
    args += [f"--host-record=h{i}.many.test,192.0.2.{i}" for i in range(1, 12)]
    proc, port = start_dnsmasq(args)
    yield {"port": port, "rsa": rsa, "ed": ed, "tmp": tmp}
    stop_process(proc)
    hole.close()


def authcheck(world, msg, mail_from, ip=CLIENT, helo="client.test", extra=()):
    path = world["tmp"] / "msg.eml"
    path.write_bytes(msg)
    proc = run_moatd(["authcheck", "-o", "dns_timeout=400ms", "-o", "dns_tries=1",
                      "--ip", ip, "--helo", helo, "--mail-from", mail_from,
                      "--dns-server", f"127.0.0.1:{world['port']}", "--hostname", "mx.test",
                      *extra, str(path)], timeout=30)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Authentication-Results: mx.test; "), proc.stdout
    res = {"ar": lines[0][len("Authentication-Results: "):], "dkim": [], "stderr": proc.stderr}
    for ln in lines[1:]:
        key = ln.split("=", 1)[0]
        fields = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', ln))
        fields = {k: v.strip('"') for k, v in fields.items()}
        if key == "dkim":
            res["dkim"].append(fields)
        elif key in ("spf", "dmarc"):
            res[key] = fields
    return res


PLAIN = message([("From", " a@plain.test"), ("Subject", " hi")], "hello\r\n")


@pytest.mark.parametrize("sender,ip,want,reason", [
    ("u@pass.test", CLIENT, "pass", "allowed"),
    ("u@fail.test", CLIENT, "fail", "not allowed"),
    ("u@soft.test", CLIENT, "softfail", "probably"),
    ("u@neutral.test", CLIENT, "neutral", ""),
    ("u@inc.test", "127.0.0.5", "pass", ""),        # include -> include -> a
    ("u@inc.test", "127.0.0.6", "pass", ""),        # include -> include -> mx
    ("u@inc.test", "127.0.0.7", "fail", ""),
    ("u@incfail.test", CLIENT, "fail", ""),         # include's fail is "no match", then -all
    ("u@incnone.test", CLIENT, "permerror", "no SPF record to include"),
    ("u@redir.test", CLIENT, "pass", ""),
    ("u@macro.test", "127.0.0.9", "pass", ""),      # exists:%{i}...
    ("u@macro.test", "127.0.0.8", "fail", ""),
    ("u@many.test", CLIENT, "permerror", "more than 10 DNS lookups"),
    ("u@void.test", CLIENT, "permerror", "more than 2 void lookups"),
    ("u@two.test", CLIENT, "permerror", "more than one SPF record"),
    ("u@bad.test", CLIENT, "permerror", "bad syntax"),
    ("u@nospf.test", CLIENT, "none", "no SPF record"),
    ("u@nothere.test", CLIENT, "none", "no SPF record"),
    ("u@x.slow.test", CLIENT, "temperror", "DNS error"),
    ("u@slowinc.test", CLIENT, "temperror", "DNS error"),
])
def test_spf(world, sender, ip, want, reason):
    r = authcheck(world, PLAIN, sender, ip=ip)
    assert r["spf"]["spf"] == want, r
    assert reason in r["spf"]["reason"], r
    assert f"spf={want} smtp.mailfrom={sender};" in r["ar"], r["ar"]


def test_spf_counts_and_null_sender(world):
    r = authcheck(world, PLAIN, "u@inc.test", ip="127.0.0.6")
    # include, include, a, mx: four terms that query DNS
    assert r["spf"]["dns_terms"] == "4", r
    r = authcheck(world, PLAIN, "u@void.test")
    assert r["spf"]["void_lookups"] == "3", r
    # the null sender is checked as postmaster@HELO
    r = authcheck(world, PLAIN, "", helo="pass.test")
    assert r["spf"]["spf"] == "pass" and r["spf"]["identity"] == "helo", r
    assert "spf=pass smtp.helo=pass.test;" in r["ar"]


HEADERS = [("From", " Alice <alice@sign.test>"), ("To", " bob@example.net"),
           ("Subject", " Lunch  at\r\n\tnoon"), ("Date", " Mon, 1 Jan 2024 10:00:00 +0000")]
BODY = "Hi Bob,\r\n\r\nLunch   at noon?  \r\n\r\n\r\n"


@pytest.mark.parametrize("kind,selector,canon", [
    ("rsa", "rsa", "relaxed/relaxed"),
    ("ed", "ed", "relaxed/relaxed"),
    ("rsa", "rsa", "simple/simple"),
])
def test_dkim_pass_and_dmarc_pass(world, kind, selector, canon):
    sig = dkim_sign(HEADERS, BODY, world[kind], "rsa" if kind == "rsa" else "ed25519",
                    "sign.test", selector, canon)
    # SPF fails for the envelope domain: DMARC passes on aligned DKIM alone
    r = authcheck(world, message(HEADERS, BODY, sig), "bounce@fail.test")
    assert r["dkim"][0]["dkim"] == "pass", r
    assert r["dkim"][0]["d"] == "sign.test" and r["dkim"][0]["s"] == selector
    assert r["dmarc"]["dmarc"] == "pass", r
    assert f"dkim=pass header.d=sign.test header.s={selector}" in r["ar"]
    assert "dmarc=pass (p=reject dis=none) header.from=sign.test" in r["ar"]


def test_dkim_modified_body_fails_and_dmarc_fails(world):
    sig = dkim_sign(HEADERS, BODY, world["rsa"], "rsa", "sign.test", "rsa")
    r = authcheck(world, message(HEADERS, BODY.replace("noon", "one"), sig), "x@fail.test")
    assert r["dkim"][0]["dkim"] == "fail", r
    assert "body hash" in r["dkim"][0]["reason"]
    assert r["spf"]["spf"] == "fail"
    assert r["dmarc"]["dmarc"] == "fail", r
    assert r["dmarc"]["p"] == "reject" and r["dmarc"]["dis"] == "reject", r
    assert "dmarc=fail (p=reject dis=reject) header.from=sign.test" in r["ar"]


def test_dkim_modified_header_and_missing_key(world):
    sig = dkim_sign(HEADERS, BODY, world["ed"], "ed25519", "sign.test", "ed")
    hdrs = [(n, " Dinner" if n == "Subject" else v) for n, v in HEADERS]
    r = authcheck(world, message(hdrs, BODY, sig), "x@pass.test")
    assert r["dkim"][0]["dkim"] == "fail", r
    assert "signature did not verify" in r["dkim"][0]["reason"]
    # SPF passes and is aligned (relaxed): DMARC passes anyway
    assert r["spf"]["spf"] == "pass" and r["dmarc"]["dmarc"] == "fail", r
    sig = dkim_sign(HEADERS, BODY, world["ed"], "ed25519", "sign.test", "nokey")
    r = authcheck(world, message(HEADERS, BODY, sig), "x@sign.test")
    assert r["dkim"][0]["dkim"] == "permerror", r
    assert "no key record" in r["dkim"][0]["reason"]
    assert r["dmarc"]["dmarc"] == "pass", r   # SPF for sign.test passes and aligns


def test_rsa_sha1_refused(world):
    sig = dkim_sign(HEADERS, BODY, world["rsa"], "rsa", "sign.test", "rsa")
    sig = sig.replace("a=rsa-sha256", "a=rsa-sha1")
    r = authcheck(world, message(HEADERS, BODY, sig), "x@fail.test")
    assert r["dkim"][0]["dkim"] == "permerror", r
    assert "rsa-sha1" in r["dkim"][0]["reason"]


def test_dmarc_org_domain_and_relaxed_alignment(world):
    # From: a subdomain without its own record: the organisation's record applies (sp=),
    # and a signature by the organisational domain aligns in relaxed mode.
    hdrs = [("From", " news@news.sign.test")] + HEADERS[1:]
    sig = dkim_sign(hdrs, BODY, world["rsa"], "rsa", "sign.test", "rsa")
    r = authcheck(world, message(hdrs, BODY, sig), "x@fail.test")
    assert r["dkim"][0]["dkim"] == "pass"
    assert r["dmarc"]["dmarc"] == "pass", r
    assert r["dmarc"]["policy_domain"] == "sign.test"
    # unsigned: fails with the subdomain policy sp=quarantine
    r = authcheck(world, message(hdrs, BODY), "x@fail.test")
    assert r["dmarc"]["dmarc"] == "fail", r
    assert r["dmarc"]["p"] == "quarantine" and r["dmarc"]["dis"] == "quarantine", r
    # SPF passes for a subdomain of the From: domain: aligned when relaxed...
    hdrs = [("From", " a@sign.test")]
    r = authcheck(world, message(hdrs, BODY), "x@pass.test")
    assert r["dmarc"]["dmarc"] == "fail", r     # pass.test is another organisation
    # ... but other.test asks for strict SPF alignment
    hdrs = [("From", " a@other.test")]
    r = authcheck(world, message(hdrs, BODY), "x@other.test")
    assert r["spf"]["spf"] == "none"
    assert r["dmarc"]["dmarc"] == "fail" and r["dmarc"]["p"] == "quarantine", r
    # no DMARC record at all
    r = authcheck(world, PLAIN, "u@pass.test")
    assert r["dmarc"]["dmarc"] == "none", r
    # two From: fields
    two = message([("From", " a@sign.test"), ("From", " b@sign.test")], BODY)
    r = authcheck(world, two, "u@pass.test")
    assert r["dmarc"]["dmarc"] == "permerror", r


def test_bad_usage(world):
    proc = run_moatd(["authcheck", "--ip", "not-an-ip", "--helo", "h", "--mail-from", "a@b",
                      "/dev/null"])
    assert proc.returncode == 2 and "not an IPv4 or IPv6 address" in proc.stderr
    proc = run_moatd(["authcheck", "--ip", CLIENT, "--helo", "h", "--mail-from", "a@b",
                      "/nonexistent/file"])
    assert proc.returncode == 1 and "/nonexistent/file" in proc.stderr
    proc = run_moatd(["authcheck", "--ip", CLIENT])
    assert proc.returncode == 2 and "usage" in proc.stderr


def test_cpu_per_message_cached(world):
    sig = dkim_sign(HEADERS, BODY * 40, world["rsa"], "rsa", "sign.test", "rsa")
    msg = message(HEADERS, BODY * 40, sig)
    r = authcheck(world, msg, "x@inc.test", ip="127.0.0.6", extra=("--repeat", "300"))
    assert r["dkim"][0]["dkim"] == "pass" and r["spf"]["spf"] == "pass", r
    m = re.search(r"cpu_per_check_us=([\d.]+)", r["stderr"])
    assert m, r["stderr"]
    print(f"\nSPF (4 lookups) + DKIM rsa-2048 + DMARC, {len(msg)} byte message, cached DNS: "
          f"{float(m.group(1)):.1f} us CPU per message")
