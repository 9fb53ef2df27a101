"""Routing hidden in the local part of a local domain's recipient (user%other@ours,
other!user@ours, "user@other"@ours) is refused from untrusted clients unless
allow_untrusted_routing is set; trusted and relay clients may use it.  nmap's
smtp-open-relay script, when installed, finds no relay."""

import shutil
import subprocess

import pytest

from conftest import HOSTNAME, check_reply, local_domains_seed
from peers_policy import applied, policy, raw_from

SEED = local_domains_seed("example.org", HOSTNAME) + [
    ("remove", "relay_net", "127.0.0.0/8"),
    ("add", "relay_net", "127.0.0.1"),
]

TRICKS = [
    "user%ext.example@example.org",
    '"user@ext.example"@example.org',
    "ext.example!user@example.org",
    "ext.example!user%other.example@example.org",
]


def rcpt(d, src, address):
    with raw_from(d, src, banner=True) as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        return c.cmd(f"RCPT TO:<{address}>")


@pytest.mark.parametrize("address", TRICKS)
def test_routing_refused_from_untrusted_client(moatd_factory, address):
    d = moatd_factory(seed_policy=SEED)
    r = rcpt(d, "127.0.0.2", address)
    check_reply(r, "550 5.7.1")
    assert "local part" in r.first, r
    check_reply(rcpt(d, "127.0.0.2", "user@example.org"), "250 2.1.5")
    row = d.log_rows("check_name = 'routing'")[0]
    assert row["result"] == "refused" and row["client_addr"] == "127.0.0.2", row
    assert "ROUTING IN LOCAL PART from [127.0.0.2]" in d.log_text()


def test_routing_allowed_for_relay_clients_and_by_setting(moatd_factory):
    d = moatd_factory(seed_policy=SEED)
    for address in TRICKS:
        check_reply(rcpt(d, "127.0.0.1", address), "250 2.1.5")     # on relay_net
    policy(d, "set", "allow_untrusted_routing", "yes")
    applied(d)
    for address in TRICKS:
        check_reply(rcpt(d, "127.0.0.2", address), "250 2.1.5")


@pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap is not installed")
def test_nmap_finds_no_open_relay(moatd_factory):
    # nmap connects from 127.0.0.1: take it off relay_net so that it is an Internet client.
    seed = local_domains_seed("example.org", HOSTNAME) + [
        ("remove", "relay_net", "127.0.0.0/8")]
    d = moatd_factory(seed_policy=seed, max_errors="100")   # 16 tries, most refused
    p = subprocess.run(["nmap", "-Pn", "-n", "-p", str(d.smtp_port), "--script",
                        "+smtp-open-relay", "--script-args",
                        "smtp-open-relay.domain=nmap.example", "127.0.0.1"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "smtp-open-relay" in p.stdout, p.stdout
    assert "open relay (" not in p.stdout, p.stdout
    assert "doesn't seem to be an open relay" in p.stdout, p.stdout
