"""Header limits: max_header_size (one field with its folded continuation lines, each line
counted with its CRLF) and max_header_count, at the boundary, answered after the whole
message has been read (the session stays in step), and the huge folded header that used to
get through."""

from conftest import check_reply, message, qid_of, stuff

FIXED = [b"From: Sender <sender@example.net>", b"To: Rcpt <rcpt@example.org>",
         b"Subject: limits"]


def folded_field(total):
    """One 'X-Long:' field folded into lines of at most 80 octets, exactly `total` octets
    with every CRLF."""
    first = b"X-Long: "
    lines = []
    remaining = total
    line = first
    while True:
        room = min(80, remaining) - len(line) - 2
        if room <= 0:
            raise ValueError(total)
        if remaining - (len(line) + room + 2) < 6 and remaining - (len(line) + 2) <= 80:
            room = remaining - len(line) - 2
        lines.append(line + b"a" * room)
        remaining -= len(line) + room + 2
        if remaining == 0:
            break
        line = b"\t"
    field = b"\r\n".join(lines) + b"\r\n"
    assert len(field) == total, (len(field), total)
    return field


def msg(headers):
    return b"\r\n".join(FIXED) + b"\r\n" + b"".join(headers) + b"\r\nbody\r\n"


def send(c, body):
    c.expect_cmd("MAIL FROM:<s@example.net>", "250 2.1.0")
    c.expect_cmd("RCPT TO:<r@example.org>", "250 2.1.5")
    c.expect_cmd("DATA", 354)
    c.send(stuff(body))
    return c.readreply(timeout=15)


def test_header_size_boundary(moatd_factory):
    d = moatd_factory(max_header_size="2000")
    with d.raw() as c:
        c.ehlo()
        at = msg([folded_field(2000)])
        qid = qid_of(send(c, at))
        assert at in d.spool_message(qid)
        r = send(c, msg([folded_field(2001)]))
        check_reply(r, "552 5.3.4")
        assert "header" in r.first
        # The refused message was read to its final dot: the next one is fine.
        qid_of(send(c, message("after")))
    row = d.log_rows("check_name = 'max_header_size'")[0]
    assert row["code"] == "552 5.3.4" and row["result"] == "refused", row
    assert "HEADER SIZE LIMIT from [127.0.0.1]" in d.log_text()


def test_header_count_boundary(moatd_factory):
    d = moatd_factory(max_header_count="20")
    extra = [b"X-N%d: v\r\n" % i for i in range(20 - len(FIXED))]
    with d.raw() as c:
        c.ehlo()
        qid_of(send(c, msg(extra)))
        r = send(c, msg(extra + [b"X-One-More: v\r\n"]))
        check_reply(r, "554 5.6.0")
        assert "header" in r.first
        # Lines after the header section are body, however they look.
        qid_of(send(c, msg(extra) + b"X-Body: not a header\r\n" * 50))
    assert d.log_rows("check_name = 'max_header_count'")
    assert "HEADER COUNT LIMIT from [127.0.0.1]" in d.log_text()


def test_two_megabyte_folded_header_refused_by_default(moatd_factory):
    d = moatd_factory()
    huge = b"X-Huge: start\r\n" + b"\t" + b"h" * 900 + b"\r\n"
    huge += (b"\t" + b"h" * 900 + b"\r\n") * 2300   # about 2 MB in one field
    with d.raw() as c:
        c.ehlo()
        check_reply(send(c, msg([huge])), "552 5.3.4")
        c.expect_cmd("NOOP", "250 2.0.0")
    d.assert_nothing_queued()
