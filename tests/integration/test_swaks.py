"""An independent SMTP client (swaks) against moatd."""

import re
import shutil
import subprocess

import pytest

from conftest import json_list


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
def test_swaks_delivers(moatd):
    p = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{moatd.smtp_port}", "--to", "a@example.org",
         "--from", "b@example.net", "--timeout", "10", "--header", "Subject: swaks test"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    m = re.search(r"<[-~]\s+250 2\.0\.0 .*queued as ([0-9A-Fa-f]{16})\s*$", p.stdout, re.M)
    assert m, p.stdout
    qid = m.group(1)
    assert moatd.queue_files() == [qid]
    assert moatd.query("SELECT sender FROM queue_message WHERE qid = ?", (qid,)) == [("b@example.net",)]
    assert moatd.query("SELECT rcpt, state FROM queue_rcpt WHERE qid = ?", (qid,)) == [
        ("a@example.org", "queued")]
    content = moatd.spool_message(qid)
    assert b"\r\nSubject: swaks test\r\n" in content
    rows = moatd.log_rows("qid = ?", (qid,))
    assert [r["result"] for r in rows] == ["accepted"]
    assert json_list(rows[0]["recipients"]) == ["a@example.org"]
