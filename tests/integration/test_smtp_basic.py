"""The ordinary SMTP conversation: commands, replies, what ends up on disk and in SQLite."""

import time

from conftest import HOSTNAME, json_list, message, qid_of, strip_received, stuff


def assert_queued(d, qid, body, sender, rcpts, helo):
    """The message is in spool/queue byte-for-byte, with its queue rows and its log row."""
    data = d.spool_message(qid)
    assert strip_received(data) == body
    assert data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF line endings only

    rows = d.query("SELECT sender, client_addr, helo, size, received_at, smtputf8, body_8bit "
                   "FROM queue_message WHERE qid = ?", (qid,))
    assert len(rows) == 1, f"queue_message rows for {qid}: {rows}"
    q_sender, client_addr, q_helo, size, received_at, _, _ = rows[0]
    assert q_sender == sender
    assert "127.0.0.1" in client_addr
    assert q_helo == helo
    assert size == len(data), f"queue_message.size {size}, spool file has {len(data)} octets"
    now_ms = time.time() * 1000
    assert now_ms - 120_000 < received_at <= now_ms + 1000

    rrows = d.query("SELECT rcpt, state FROM queue_rcpt WHERE qid = ? ORDER BY rcpt", (qid,))
    assert rrows == sorted((r, "queued") for r in rcpts)

    logs = d.log_rows("qid = ?", (qid,))
    assert len(logs) == 1, f"message_log rows for {qid}: {logs}"
    log = logs[0]
    assert log["result"] == "accepted"
    assert log["code"] == "250 2.0.0"
    assert log["sender"] == sender
    assert json_list(log["recipients"]) == list(rcpts)
    assert "127.0.0.1" in log["client_addr"]
    assert log["helo"] == helo
    assert abs(log["ts"] - now_ms) < 120_000
    assert log["session_id"]
    assert d.incoming_files() == []


def test_banner(moatd):
    with moatd.raw(banner=False) as c:
        r = c.readreply()
        assert r.lines == [f"220 {HOSTNAME} ESMTP Moat"]


def test_simple_message(moatd):
    body = message("simple", ["Hello, world.", "Second line."])
    with moatd.smtp() as s:
        code, _ = s.ehlo("client.example")
        assert code == 250
        assert s.mail("sender@example.net")[0] == 250
        assert s.rcpt("rcpt@example.org")[0] == 250
        code, resp = s.data(body)
        assert code == 250
        qid = resp.decode().split()[-1]
        assert resp.decode().startswith("2.0.0")
    assert_queued(moatd, qid, body, "sender@example.net", ["rcpt@example.org"], "client.example")
    assert f"qid={qid}" in moatd.log_text()


def test_sendmail_multi_recipient(moatd):
    body = message("multi", ["Three recipients."])
    rcpts = ["a@example.org", "b@example.org", "c@example.com"]
    with moatd.smtp() as s:
        assert s.ehlo("multi.example")[0] == 250
        refused = s.sendmail("sender@example.net", rcpts, body)
        assert refused == {}
    rows = moatd.query("SELECT qid FROM queue_message")
    assert len(rows) == 1
    qid = rows[0][0]
    assert moatd.queue_files() == [qid]
    assert_queued(moatd, qid, body, "sender@example.net", rcpts, "multi.example")


def test_null_sender_accepted(moatd):
    body = message("bounce")
    with moatd.raw() as c:
        c.ehlo()
        qid = qid_of(c.transaction("", ["rcpt@example.org"], body))
    assert_queued(moatd, qid, body, "", ["rcpt@example.org"], "client.example")


def test_ehlo_extensions(moatd):
    with moatd.raw() as c:
        r = c.ehlo("client.example")
    assert r.lines[0].startswith(f"250-{HOSTNAME}")
    exts = {line[4:].strip().upper() for line in r.lines[1:]}
    for want in ("PIPELINING", f"SIZE {25 * 1024 * 1024}", "8BITMIME", "ENHANCEDSTATUSCODES",
                 "SMTPUTF8"):
        assert want in exts, f"EHLO lacks {want}: {r.lines}"
    # STARTTLS before TLS; AUTH only under TLS (test_tls_starttls.py, test_auth_smtp.py).
    assert "STARTTLS" in exts, r.lines
    assert not any(e.split()[0] == "AUTH" for e in exts), f"AUTH offered in clear: {r.lines}"


def test_ehlo_size_follows_config(moatd_factory):
    d = moatd_factory(max_message_size="10k")
    with d.raw() as c:
        r = c.ehlo()
    assert "250-SIZE 10240" in r.lines or "250 SIZE 10240" in r.lines, r.lines


def test_helo(moatd):
    body = message("helo")
    with moatd.raw() as c:
        r = c.expect_cmd("HELO old.example", 250)
        assert len(r.lines) == 1
        qid = qid_of(c.transaction("s@example.net", ["r@example.org"], body))
    assert_queued(moatd, qid, body, "s@example.net", ["r@example.org"], "old.example")


def test_simple_commands(moatd):
    with moatd.raw() as c:
        c.ehlo()
        c.expect_cmd("NOOP", "250 2.0.0")
        c.expect_cmd("RSET", "250 2.0.0")
        c.expect_cmd("HELP", "214 2.0.0")
        c.expect_cmd("VRFY postmaster", "252 2.1.5")
        c.expect_cmd("VRFY nobody@example.org", "252 2.1.5")
        c.expect_cmd("FROBNICATE", "500 5.5.2")
        for verb in ("BDAT 10 LAST", "EXPN staff"):
            c.expect_cmd(verb, "502 5.5.1")
        c.expect_cmd("STARTTLS now", "501 5.5.4")  # STARTTLS itself: test_tls_starttls.py
        c.expect_cmd("AUTH PLAIN AGJvYgBzZWNyZXQ=", "538 5.7.11")  # not before TLS
        c.expect_cmd("noop", "250 2.0.0")  # verbs are case-insensitive
        c.expect_cmd("QUIT", "221 2.0.0")
        c.expect_closed()


def test_rset_discards_transaction(moatd):
    with moatd.raw() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        c.expect_cmd("RCPT TO:<r@example.org>", "250 2.1.5")
        c.expect_cmd("RSET", "250 2.0.0")
        c.expect_cmd("RCPT TO:<r@example.org>", "503 5.5.1")
        c.expect_cmd("DATA", "503 5.5.1")
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
    assert moatd.queue_files() == []


def test_sequencing_errors(moatd):
    with moatd.raw() as c:
        c.expect_cmd("MAIL FROM:<s@example.net>", "503 5.5.1")  # before EHLO
        c.expect_cmd("RCPT TO:<r@example.org>", "503 5.5.1")
        c.expect_cmd("DATA", "503 5.5.1")
        c.ehlo()
        c.expect_cmd("RCPT TO:<r@example.org>", "503 5.5.1")  # before MAIL
        c.expect_cmd("DATA", "503 5.5.1")
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        c.expect_cmd("DATA", "503 5.5.1")  # no recipient yet
        c.expect_cmd("MAIL FROM:<t@example.net>", "503 5.5.1")  # nested MAIL
        c.expect_cmd("RCPT TO:<r@example.org>", "250 2.1.5")
        c.expect_cmd("DATA", 354)
        c.send(stuff(message("after errors")))
        qid_of(c.readreply())


def test_address_syntax(moatd):
    with moatd.raw() as c:
        c.ehlo()
        for bad in ("<a b@example.net>", "<a@b@example.net>", "<user@>", "<@>", "<a@[bad>"):
            c.expect_cmd(f"MAIL FROM:{bad}", "501 5.1.7")
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        for bad in ("<a b@example.org>", "<a@b@example.org>", "<user@>", "<>"):
            c.expect_cmd(f"RCPT TO:{bad}", "501 5.1.3")
        c.expect_cmd("RCPT TO:<r@example.org>", "250 2.1.5")


def test_parameters(moatd):
    with moatd.raw() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net> FOO=bar", "555 5.5.4")
        c.expect_cmd("MAIL FROM:<s@example.net> SIZE=abc", "555 5.5.4")
        c.expect_cmd("MAIL FROM:<s@example.net> BODY=9BIT", "555 5.5.4")
        c.expect_cmd(f"MAIL FROM:<s@example.net> SIZE={25 * 1024 * 1024 + 1}", "552 5.3.4")
        c.expect_cmd(f"MAIL FROM:<s@example.net> SIZE={25 * 1024 * 1024}", "250 2.1.0")
        c.expect_cmd("RCPT TO:<r@example.org> FOO=1", "555 5.5.4")
        c.expect_cmd("RCPT TO:<r@example.org> NOTIFY=NEVER", "555 5.5.4")  # DSN not offered
        c.expect_cmd("RCPT TO:<r@example.org>", "250 2.1.5")
        c.expect_cmd("RSET", "250 2.0.0")
        c.expect_cmd("MAIL FROM:<s@example.net> SIZE=1000 BODY=7BIT", "250 2.1.0")


def test_size_param_refusal_logged(moatd):
    with moatd.raw() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<big@example.net> SIZE=999999999999", "552 5.3.4")
    rows = moatd.log_rows("result = 'refused' AND code = '552 5.3.4'")
    assert len(rows) == 1, rows
    assert rows[0]["sender"] in ("big@example.net", None)
    assert moatd.query("SELECT count(*) FROM queue_message") == [(0,)]


def test_smtputf8(moatd):
    body = message("utf8", ["Gr\u00fc\u00dfe".encode()],
                   extra_headers=["Reply-To: \u00fc@example.org".encode()])
    with moatd.raw() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<\u00fc@example.org>".encode(), "553 5.6.7")
        c.expect_cmd("MAIL FROM:<\u00fc@example.org> SMTPUTF8".encode(), "250 2.1.0")
        c.expect_cmd("RCPT TO:<j\u00f6rg@example.org>".encode(), "250 2.1.5")
        c.expect_cmd("DATA", 354)
        c.send(stuff(body))
        qid = qid_of(c.readreply())
    assert_queued(moatd, qid, body, "\u00fc@example.org", ["j\u00f6rg@example.org"], "client.example")
    assert moatd.query("SELECT smtputf8 FROM queue_message WHERE qid = ?", (qid,)) == [(1,)]


def test_8bitmime(moatd):
    body = message("8bit", ["caf\u00e9 cr\u00e8me".encode("utf-8"), b"latin-1 \xe9\xe8"],
                   extra_headers=[b"Content-Type: text/plain; charset=utf-8",
                                  b"Content-Transfer-Encoding: 8bit"])
    with moatd.raw() as c:
        c.ehlo()
        qid = qid_of(c.transaction("s@example.net", ["r@example.org"], body, "BODY=8BITMIME"))
        qid7 = qid_of(c.transaction("s@example.net", ["r@example.org"], message("7bit"), "BODY=7BIT"))
    assert_queued(moatd, qid, body, "s@example.net", ["r@example.org"], "client.example")
    assert moatd.query("SELECT body_8bit FROM queue_message WHERE qid = ?", (qid,)) == [(1,)]
    assert moatd.query("SELECT body_8bit FROM queue_message WHERE qid = ?", (qid7,)) == [(0,)]


def test_dot_unstuffing(moatd):
    wire = (b"Subject: dots\r\n\r\n"
            b"..x\r\n"
            b"...\r\n"
            b"..\r\n"
            b". leading dot and space\r\n"
            b"x.\r\n"
            b".\r\n")
    want = (b"Subject: dots\r\n\r\n"
            b".x\r\n"
            b"..\r\n"
            b".\r\n"
            b" leading dot and space\r\n"
            b"x.\r\n")
    # '. leading...' on the wire is not stuffed, so RFC 5321 4.5.2 drops the first dot.
    with moatd.raw() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", 250)
        c.expect_cmd("RCPT TO:<r@example.org>", 250)
        c.expect_cmd("DATA", 354)
        c.send(wire)
        qid = qid_of(c.readreply())
    assert strip_received(moatd.spool_message(qid)) == want


def test_empty_body(moatd):
    with moatd.raw() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", 250)
        c.expect_cmd("RCPT TO:<r@example.org>", 250)
        c.expect_cmd("DATA", 354)
        c.send(b".\r\n")
        qid = qid_of(c.readreply())
    assert strip_received(moatd.spool_message(qid)) == b""


def test_pipelining(moatd):
    body = message("pipelined")
    rcpts = ["p1@example.org", "p2@example.org", "p3@example.org"]
    with moatd.raw() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<s@example.net>\r\n"
               + b"".join(f"RCPT TO:<{r}>\r\n".encode() for r in rcpts)
               + b"DATA\r\n")
        c.expect("250 2.1.0")
        for _ in rcpts:
            c.expect("250 2.1.5")
        c.expect(354)
        c.send(stuff(body))
        qid = qid_of(c.readreply())
        # A whole second transaction plus QUIT in one write.
        c.send(b"MAIL FROM:<s@example.net>\r\nRCPT TO:<p4@example.org>\r\nDATA\r\n"
               + stuff(body) + b"QUIT\r\n")
        c.expect("250 2.1.0")
        c.expect("250 2.1.5")
        c.expect(354)
        qid2 = qid_of(c.readreply())
        c.expect("221 2.0.0")
        c.expect_closed()
    assert qid != qid2
    assert_queued(moatd, qid, body, "s@example.net", rcpts, "client.example")
    assert_queued(moatd, qid2, body, "s@example.net", ["p4@example.org"], "client.example")


def test_max_recipients(moatd_factory):
    d = moatd_factory(max_recipients=3)
    body = message("max rcpt")
    rcpts = [f"r{i}@example.org" for i in range(5)]
    with d.raw() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        for r in rcpts[:3]:
            c.expect_cmd(f"RCPT TO:<{r}>", "250 2.1.5")
        for r in rcpts[3:]:
            c.expect_cmd(f"RCPT TO:<{r}>", "452 4.5.3")
        c.expect_cmd("DATA", 354)
        c.send(stuff(body))
        qid = qid_of(c.readreply())
    assert_queued(d, qid, body, "s@example.net", rcpts[:3], "client.example")


def test_duplicate_recipient_is_one_row(moatd):
    body = message("dup")
    with moatd.raw() as c:
        c.ehlo()
        c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
        c.expect_cmd("RCPT TO:<r@example.org>", "250 2.1.5")
        c.expect_cmd("RCPT TO:<r@example.org>", 250)
        c.expect_cmd("DATA", 354)
        c.send(stuff(body))
        qid = qid_of(c.readreply())
    assert d_rcpts(moatd, qid) == [("r@example.org", "queued")]


def d_rcpts(d, qid):
    return d.query("SELECT rcpt, state FROM queue_rcpt WHERE qid = ? ORDER BY rcpt", (qid,))


def test_several_messages_one_session(moatd):
    bodies = [message(f"n{i}", [f"body {i}"]) for i in range(5)]
    qids = []
    with moatd.raw() as c:
        c.ehlo()
        for b in bodies:
            qids.append(qid_of(c.transaction("s@example.net", ["r@example.org"], b)))
    assert len(set(qids)) == 5
    for q, b in zip(qids, bodies):
        assert strip_received(moatd.spool_message(q)) == b
    assert sorted(moatd.queue_files()) == sorted(qids)
