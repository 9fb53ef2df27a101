#!/usr/bin/env python3
"""Load generator of bench/rules_relay.sh: real messages, as they are.

    send_files.py smtp HOST PORT CORPUS COUNT THREADS DEADLINE_S
    send_files.py rspamd URL CORPUS COUNT THREADS DEADLINE_S

Both take the same fixed sample of the SpamAssassin corpus (CORPUS is what
scripts/corpus.sh prints): 200 messages of 4000-6000 octets and 20 of
40000-60000 octets, taken round-robin over the groups in name order, leaving
out messages with a line longer than 998 octets (SMTP cannot carry them as
they are); the mbox "From " line is cut off and line ends made CRLF.  The sample
is re-sent in a fixed interleaved order until COUNT messages have gone.

smtp: THREADS threads, one SMTP connection per message (MAIL FROM
bench@example.net, RCPT sink@example.org), so every MTA gets the same client.
rspamd: THREADS threads POST each message to URL (/checkv2) and record the
client-measured time and the scan time rspamd reports.  Everything stops at
DEADLINE_S.  Prints one JSON object: counts, elapsed seconds, failures.
"""
import http.client
import json
import os
import smtplib
import sys
import threading
import time

GROUPS = ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"]
SMALL_TOTAL, LARGE_TOTAL = 200, 20


def fits(path, lo, hi):
    """A corpus file of lo..hi octets that SMTP can carry as it is (RFC 5321
    4.5.3.1.6: no line longer than 998 octets; moatd refuses those, 554 5.6.0)."""
    if path.endswith(".json") or not lo <= os.path.getsize(path) <= hi:
        return False
    with open(path, "rb") as f:
        return all(len(line.rstrip(b"\r\n")) <= 998 for line in f)


def pick(corpus, lo, hi, total):
    """total files of lo..hi octets, taken round-robin over the groups in name order."""
    lists = [[os.path.join(corpus, g, n) for n in sorted(os.listdir(os.path.join(corpus, g)))]
             for g in GROUPS]
    iters = [iter(p for p in lst if fits(p, lo, hi)) for lst in lists]
    out = []
    while len(out) < total and iters:
        for it in list(iters):
            p = next(it, None)
            if p is None:
                iters.remove(it)
            elif len(out) < total:
                out.append(p)
    return out


def sample(corpus):
    small = pick(corpus, 4000, 6000, SMALL_TOTAL)
    large = pick(corpus, 40000, 60000, LARGE_TOTAL)
    msgs = []
    for p in small + large:
        with open(p, "rb") as f:
            data = f.read()
        if data.startswith(b"From "):
            data = data[data.find(b"\n") + 1:]
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        msgs.append(data)
    # Interleave: one large message after every ten small ones.
    order = []
    s, lg = list(range(len(small))), list(range(len(small), len(msgs)))
    while s or lg:
        order += s[:10]
        s = s[10:]
        if lg:
            order.append(lg.pop(0))
    return [msgs[i] for i in order], len(small), len(large)


class Work:
    def __init__(self, msgs, count, deadline):
        self.msgs, self.count, self.deadline = msgs, count, deadline
        self.next = 0
        self.lock = threading.Lock()
        self.ok = 0
        self.fail = 0
        self.errors = {}
        self.lat = []
        self.scan = []

    def take(self):
        with self.lock:
            if self.next >= self.count or time.monotonic() > self.deadline:
                return None
            i = self.next
            self.next += 1
            return self.msgs[i % len(self.msgs)]

    def done(self, err=None, lat=None, scan=None):
        with self.lock:
            if err is None:
                self.ok += 1
            else:
                self.fail += 1
                self.errors[err] = self.errors.get(err, 0) + 1
            if lat is not None:
                self.lat.append(lat)
            if scan is not None:
                self.scan.append(scan)


def smtp_worker(w, host, port):
    while True:
        m = w.take()
        if m is None:
            return
        try:
            with smtplib.SMTP(host, port, timeout=60) as s:
                refused = s.sendmail("bench@example.net", ["sink@example.org"], m)
            w.done("refused %r" % refused if refused else None)
        except smtplib.SMTPResponseException as e:
            w.done("%d %s" % (e.smtp_code, e.smtp_error[:60]))
        except (OSError, smtplib.SMTPException) as e:
            w.done(type(e).__name__ + ": " + str(e)[:60])


def rspamd_worker(w, host, port, path):
    conn = http.client.HTTPConnection(host, port, timeout=60)
    while True:
        m = w.take()
        if m is None:
            conn.close()
            return
        t0 = time.monotonic()
        try:
            conn.request("POST", path, body=m, headers={
                "From": "bench@example.net", "Rcpt": "sink@example.org",
                "IP": "198.51.100.7", "Helo": "mail.example.net", "Pass": "all"})
            r = conn.getresponse()
            body = r.read()
            lat = time.monotonic() - t0
            if r.status != 200:
                w.done("HTTP %d" % r.status)
                continue
            j = json.loads(body)
            scan = j.get("time_real")
            w.done(None, lat, float(scan) if scan is not None else None)
        except (OSError, http.client.HTTPException, ValueError) as e:
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=60)
            w.done(type(e).__name__ + ": " + str(e)[:60])


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


def main():
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    mode = sys.argv[1]
    if mode == "smtp" and len(sys.argv) == 8:
        host, port = sys.argv[2], int(sys.argv[3])
        corpus, count, threads, limit = sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
        target = (smtp_worker, (host, port))
    elif mode == "rspamd" and len(sys.argv) == 7:
        url = sys.argv[2]
        hostport, _, path = url.partition("://")[2].partition("/")
        host, _, port = hostport.partition(":")
        corpus, count, threads, limit = sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
        target = (rspamd_worker, (host, int(port), "/" + path))
    else:
        sys.exit(__doc__)
    msgs, nsmall, nlarge = sample(corpus)
    w = Work(msgs, count, time.monotonic() + limit)
    t0 = time.monotonic()
    ts = [threading.Thread(target=target[0], args=(w,) + target[1]) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out = {"mode": mode, "sent": w.ok, "failed": w.fail, "errors": w.errors,
           "elapsed_s": round(time.monotonic() - t0, 3), "sample_small": nsmall,
           "sample_large": nlarge, "sample_octets": sum(len(m) for m in msgs)}
    if w.lat:
        out["client_ms_mean"] = round(1000 * sum(w.lat) / len(w.lat), 2)
        out["client_ms_p50"] = round(1000 * pct(w.lat, 50), 2)
        out["client_ms_p99"] = round(1000 * pct(w.lat, 99), 2)
    if w.scan:
        out["scan_ms_mean"] = round(1000 * sum(w.scan) / len(w.scan), 2)
        out["scan_ms_p50"] = round(1000 * pct(w.scan, 50), 2)
        out["scan_ms_p99"] = round(1000 * pct(w.scan, 99), 2)
    print(json.dumps(out))
    sys.exit(0 if w.ok == count else 1)


if __name__ == "__main__":
    main()
