"""delay_reject (Postfix smtpd_delay_reject) against the real moatd: a refusal decided at
connect or HELO is given at each RCPT, so that the message log names the sender and the
recipients; MAIL still gets 250; a flood of refused commands ends in 421; AUTH is refused
to such a client; with the setting off the connection is refused before the banner.

Clients use different loopback source addresses to be different clients."""

from conftest import check_reply
from peers_policy import applied, policy, raw_from
from api_client import ADMIN_PASSWORD, Api, api_moatd  # noqa: F401 (fixture)


def test_denied_client_is_refused_at_rcpt_and_logged_with_sender(api_moatd):
    d = api_moatd()
    eid = policy(d, "add", "conn_deny", "127.0.0.2").stdout.strip()
    policy(d, "set", "conn_deny_text", "Go away {ip}")
    applied(d)
    with raw_from(d, "127.0.0.2", banner=True) as c:
        check_reply(c.cmd("EHLO client.example"), 250)
        c.expect_cmd("MAIL FROM:<spam@sender.example>", "250 2.1.0")
        rep = c.cmd("RCPT TO:<r1@example.org>")
        assert rep.first == "554 5.7.1 Go away 127.0.0.2", rep
        check_reply(c.cmd("RCPT TO:<r2@example.org>"), "554 5.7.1")
        check_reply(c.cmd("DATA"), "554 5.5.1")           # no valid recipients
        c.expect_cmd("QUIT", 221)
    rows = d.log_rows("check_name = 'conn_deny'", want=2)
    assert [(r["sender"], r["recipients"]) for r in rows] == [
        ("spam@sender.example", '["r1@example.org"]'),
        ("spam@sender.example", '["r2@example.org"]')], rows
    assert rows[0]["entry"] == f"conn_deny entry {eid} 127.0.0.2" and \
        rows[0]["result"] == "refused" and rows[0]["code"] == "554 5.7.1", rows[0]
    # Searchable by sender in the message log, with its conversation.
    api = Api(d.http_port)
    api.login("admin", ADMIN_PASSWORD)
    items = api.get("/api/v1/messages?sender=spam@sender.example").expect(200).json["items"]
    assert len(items) == 2 and all(i["check_name"] == "conn_deny" for i in items), items
    tl = api.get(f"/api/v1/messages/{rows[0]['id']}/timeline").expect(200).json
    kinds = [(e["stage"], e["event"]) for e in tl["events"]]
    assert kinds[:2] == [("connect", "connect"), ("connect", "refusal_delayed")], kinds
    assert kinds[-1] == ("rcpt", "refused") and \
        tl["events"][-1]["detail"]["check"] == "conn_deny", tl["events"][-1]
    # A client that leaves before any RCPT is logged with the refusal it was due.
    with raw_from(d, "127.0.0.2", banner=True) as c:
        c.expect_cmd("QUIT", 221)
    d.log_rows("check_name = 'conn_deny' AND sender IS NULL")


def test_flood_guard_closes_after_delay_reject_max(api_moatd):
    d = api_moatd()
    policy(d, "add", "conn_deny", "127.0.0.3")
    policy(d, "set", "delay_reject_max", "3")
    applied(d)
    with raw_from(d, "127.0.0.3", banner=True) as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@sender.example>", "250 2.1.0")
        for i in range(3):
            check_reply(c.cmd(f"RCPT TO:<r{i}@example.org>"), "554 5.7.1")
        check_reply(c.cmd("RCPT TO:<r9@example.org>"), "421 4.7.0")
        c.expect_closed()
    assert "DELAYED REJECT LIMIT from [127.0.0.3]" in d.log_text()
    assert len(d.log_rows("check_name = 'conn_deny'", want=3)) == 3


def test_helo_refusal_is_given_at_rcpt_and_a_good_helo_clears_it(api_moatd):
    d = api_moatd()
    policy(d, "set", "helo_reject_bare_ip", "yes")
    policy(d, "set", "helo_text", "Bad HELO")
    applied(d)
    with raw_from(d, "127.0.0.4", banner=True) as c:
        check_reply(c.cmd("EHLO 192.0.2.1"), 250)
        c.expect_cmd("MAIL FROM:<s@sender.example>", "250 2.1.0")
        rep = c.cmd("RCPT TO:<r@example.org>")
        assert rep.first == "550 5.7.1 Bad HELO: address literal needs brackets", rep
        check_reply(c.cmd("EHLO client.example"), 250)     # judged anew
        c.expect_cmd("MAIL FROM:<s@sender.example>", "250 2.1.0")
        c.expect_cmd("RCPT TO:<r@example.org>", "250 2.1.5")
    row = d.log_rows("check_name = 'helo_bare_ip'")[0]
    assert row["sender"] == "s@sender.example" and row["helo"] == "192.0.2.1", row


def test_setting_off_refuses_before_the_banner(api_moatd):
    d = api_moatd()
    policy(d, "add", "conn_deny", "127.0.0.5")
    policy(d, "set", "delay_reject", "no")
    applied(d)
    with raw_from(d, "127.0.0.5") as c:
        check_reply(c.readreply(), "554 5.7.1")
        c.expect_closed()
    with raw_from(d, "127.0.0.6", banner=True) as c:   # other clients are not affected
        c.expect_cmd("QUIT", 221)


def test_auth_is_refused_to_a_client_refused_at_connect(moatd_factory):
    import base64
    from submission_util import SUBMISSION_CONF, add_user, smtp_tls, submission_port
    d = moatd_factory(**SUBMISSION_CONF)
    add_user(d, "alice", ["alice@example.com"], "alice-password-1")
    policy(d, "add", "conn_deny", "127.0.0.1")
    applied(d)
    s = smtp_tls(submission_port(d))
    try:
        token = base64.b64encode(b"\0alice\0alice-password-1").decode()
        code, text = s.docmd("AUTH", "PLAIN " + token)
        assert (code, text[:5]) == (554, b"5.7.1"), (code, text)
        code, _ = s.docmd("MAIL", "FROM:<alice@example.com>")
        assert code == 530                                  # still not authenticated
    finally:
        s.close()
    assert "auth ok user=alice" not in d.log_text()
