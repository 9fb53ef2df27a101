"""Message-log search against the real moatd: times with any RFC 3339 offset, and the
sender searched without regard to case (as the queue does)."""

import time
import urllib.parse

from api_client import admin_api, api_moatd, insert_log_rows, log_row  # noqa: F401

MIN = 60 * 1000


def test_messages_from_to_accept_offsets(admin_api):
    d, api = admin_api
    base = 1767225600000  # 2026-01-01T00:00:00Z
    insert_log_rows(d.db_path, [log_row(i, base + i * MIN) for i in range(10)])

    def ids(**q):
        return api.get("/api/v1/messages?limit=100&" + urllib.parse.urlencode(q)).expect(200).json["items"]

    # 01:03+01:00 is 00:03Z: rows 3..9
    assert len(ids(**{"from": "2026-01-01T01:03:00+01:00"})) == 7
    assert len(ids(**{"from": "2025-12-31T19:03:00-05:00"})) == 7
    assert len(ids(**{"from": "2026-01-01T00:03:00Z", "to": "2026-01-01T06:35:00.000000+06:30"})) == 2
    assert len(ids(**{"from": "2026-01-01T00:03:00.5Z"})) == 6
    # an unencoded "+" arrives as a space and is read as the offset's sign
    r = api.get("/api/v1/messages?limit=100&from=2026-01-01T01:03:00+01:00").expect(200).json
    assert len(r["items"]) == 7
    for bad in ("2026-01-01T01:03:00+0100", "2026-01-01T01:03:00+01", "2026-02-30T00:00:00Z",
                "2026-01-01T01:03:00"):
        e = api.get("/api/v1/messages?" + urllib.parse.urlencode({"from": bad}))
        e.expect(422, field="from")
    stats = api.get("/api/v1/stats/messages?" + urllib.parse.urlencode(
        {"from": "2026-01-01T01:00:00+01:00", "to": "2026-01-01T02:00:00+01:00"})).expect(200).json
    assert stats["from"] == base and sum(stats["buckets"][0]["by_result"].values()) == 10


def test_messages_sender_search_ignores_case(admin_api):
    d, api = admin_api
    now = int(time.time() * 1000)
    rows = [log_row(i, now - i * MIN, sender=s) for i, s in enumerate([
        "Alice.Smith@Example.NET", "alice.smith@example.net", "ALICE.SMITH@EXAMPLE.NET",
        "alice.smithers@example.net", "bob@example.net", "alicesmith@example.net",
        "12345@example.net", "12345@EXAMPLE.net", ""])]
    # many others, so that a wrong range would show
    rows += [log_row(100 + i, now - (100 + i) * MIN, sender=f"user{i}@example.net") for i in range(200)]
    insert_log_rows(d.db_path, rows)

    def senders(q, **extra):
        qs = urllib.parse.urlencode({"sender": q, "limit": 2, **extra})
        out, url = [], "/api/v1/messages?" + qs
        while url:
            page = api.get(url).expect(200).json
            out += [m["sender"] for m in page["items"]]
            url = page["next_cursor"] and f"/api/v1/messages?{qs}&cursor={page['next_cursor']}"
        return out

    want = ["Alice.Smith@Example.NET", "alice.smith@example.net", "ALICE.SMITH@EXAMPLE.NET"]
    assert senders("alice.smith@example.net") == want
    assert senders("ALICE.smith@Example.Net") == want
    assert senders("aLiCe.SmItH@eXaMpLe.NeT", sort="ts") == list(reversed(want))
    assert senders("12345@example.NET") == ["12345@example.net", "12345@EXAMPLE.net"]
    assert senders("<>") == [""]
    assert senders("alice@example.net") == []
    # with another lead filter (client) the sender still matches in any case
    assert len(senders("BOB@example.net", client="192.0.2.1")) == 1
