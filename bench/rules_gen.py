#!/usr/bin/env python3
"""Server rule set of a realistic mix, for bench/rules_relay.sh.

    rules_gen.py moat N OUT.json          a JSON array of N moatd rule objects
    rules_gen.py postfix N DIR            the same N rules as Postfix pcre: tables
                                          (DIR/header_checks, DIR/body_checks,
                                          DIR/sender_access) and DIR/unexpressed

The mix and the random sequence are those of bench/rules_bench.c (same
xorshift generator, same seed, same draws in the same order): 30% Subject
phrases, 15% From domains, 25% body phrases, 8% URL hosts, 4% attachment
names, 4% envelope senders, 4% sender in_list, 10% regular expressions on the
body and the Subject (one in ten with a look-ahead, so PCRE2 runs it in
moatd).  One change: every regular expression ends in its rule's number plus
100000 (rules_bench.c uses the plain number, or none for the \\d{n} form), so
that `(now|order)\\W{1,3}1` cannot match "order now 1" in a real message.
Every literal is distinct and no rule matches the benchmark messages, so
every message walks the whole set.
"""
import json
import os
import re
import sys

WORDS = [
    "free", "money", "offer", "winner", "credit", "loan", "viagra", "casino", "mortgage",
    "refinance", "investment", "bonus", "prize", "cheap", "discount", "pharmacy", "rolex",
    "replica", "lottery", "urgent", "million", "dollars", "weight", "diet", "pills", "click",
    "unsubscribe", "limited", "guaranteed", "opportunity", "business", "income", "cash",
    "debt", "insurance", "quote", "stock", "alert", "earn", "home", "work", "save", "deal",
    "order", "now", "today", "act", "best", "price", "online",
]
SEED = 88172645463325252
MASK = (1 << 64) - 1
REGEX_OFFSET = 100000


class Rng:
    """xorshift64 of rules_bench.c: rnd(n) = state % n after one step."""

    def __init__(self):
        self.s = SEED

    def rnd(self, n):
        s = self.s
        s ^= (s << 13) & MASK
        s ^= s >> 7
        s ^= (s << 17) & MASK
        self.s = s
        return s % n


def make_rules(n):
    """Yields (i, kind, leaf) with leaf the moatd condition of rule i."""
    rng = Rng()
    for i in range(n):
        w1 = WORDS[rng.rnd(len(WORDS))]
        w2 = WORDS[rng.rnd(len(WORDS))]
        kind = rng.rnd(100)
        if kind < 30:
            leaf = {"field": "header", "header": "Subject", "op": "contains",
                    "value": f"{w1} {w2} {i}"}
            k = "subject"
        elif kind < 45:
            if kind < 40:
                leaf = {"field": "header", "header": "From", "op": "contains",
                        "value": f"@{w1}{i}.example"}
            else:
                leaf = {"field": "header", "header": "From", "op": "ends_with",
                        "value": f"{w1}{i}.example>"}
            k = "from"
        elif kind < 70:
            w3 = WORDS[rng.rnd(len(WORDS))]
            leaf = {"field": "body", "op": "contains", "value": f"{w1} {w2} {w3}{i}"}
            k = "body"
        elif kind < 78:
            leaf = {"field": "url_host", "op": "ends_with", "value": f".{w1}-{w2}{i}.example"}
            k = "url_host"
        elif kind < 82:
            leaf = {"field": "attachment_name", "op": "is", "value": f"{w1}{i}.exe"}
            k = "attachment"
        elif kind < 86:
            leaf = {"field": "sender", "op": "starts_with", "value": f"{w1}{i}@"}
            k = "sender"
        elif kind < 90:
            leaf = {"field": "sender", "op": "in_list", "value": f"list{i % 50}"}
            k = "in_list"
        else:
            r = rng.rnd(10)
            num = REGEX_OFFSET + i
            if r == 0:
                val = f"\\b{w1}(?=\\s+{w2}{num}\\b)"
            elif r < 5:
                val = f"{w1}[\\s_.-]*{w2}\\d{{{2 + i % 5}}}{num}"
            else:
                val = f"({w1}|{w2})\\W{{1,3}}{num}"
            leaf = {"field": "body" if r < 7 else "header", "op": "matches", "value": val}
            if r >= 7:
                leaf = {"field": "header", "header": "Subject", "op": "matches", "value": val}
            k = "regex_body" if r < 7 else "regex_subject"
        yield i, k, leaf


def moat(n, out):
    rules = []
    for i, _, leaf in make_rules(n):
        action = {"type": "tag", "subject_prefix": "[SPAM]"} if i % 3 == 0 else {"type": "quarantine"}
        rules.append({"name": f"rule {i}", "when": leaf, "action": action})
    with open(out, "w") as f:
        json.dump(rules, f)


def lit(s):
    """A literal as a PCRE fragment inside a /.../ pcre: table pattern."""
    return re.escape(s).replace("/", "\\/")


def postfix(n, d):
    """Each rule as one pcre: line with action WARN (logged, nothing refused).

    header_checks sees each logical header (folded lines joined, RFC 2047
    words still encoded) and the MIME headers of every part; body_checks
    sees each body line as sent (base64 and quoted-printable not decoded);
    the envelope sender only exists for smtpd's check_sender_access.
    pcre: tables match without case by default (a trailing "i" would turn
    that off), like moatd's rules.
    """
    hdr, body, snd, missing = [], [], [], []
    for i, k, leaf in make_rules(n):
        v = leaf["value"]
        warn = f"WARN rule {i}"
        if k == "subject":
            hdr.append(f"/^Subject:.*{lit(v)}/ {warn}")
        elif k == "from" and leaf["op"] == "contains":
            hdr.append(f"/^From:.*{lit(v)}/ {warn}")
        elif k == "from":
            hdr.append(f"/^From:.*{lit(v)}\\s*$/ {warn}")
        elif k == "body":
            body.append(f"/{lit(v)}/ {warn}")
        elif k == "url_host":
            # No URL parser: a host ending inside http(s):// on one line.
            body.append(f"/https?:\\/\\/[^\\/\\s\"'<>]*{lit(v)}(?![\\w.-])/ {warn}")
        elif k == "attachment":
            hdr.append(f"/^Content-(Type|Disposition):.*name\\*?=\\s*\"?{lit(v)}\"?\\s*(;|$)/ {warn}")
        elif k == "sender":
            snd.append(f"/^{lit(v)}/ {warn}")
        elif k == "in_list":
            # A policy list has no pcre: counterpart; its members would go in a
            # hash: check_sender_access table, and these lists are empty.
            missing.append(f"rule {i}: sender in_list {v}")
        elif k == "regex_body":
            body.append(f"/{v.replace('/', chr(92) + '/')}/ {warn}")
        else:
            hdr.append(f"/^Subject:.*(?:{v.replace('/', chr(92) + '/')})/ {warn}")
    os.makedirs(d, exist_ok=True)
    for name, lines in (("header_checks", hdr), ("body_checks", body),
                        ("sender_access", snd), ("unexpressed", missing)):
        with open(os.path.join(d, name), "w") as f:
            f.write("".join(line + "\n" for line in lines))
    print(f"header_checks={len(hdr)} body_checks={len(body)} sender_access={len(snd)}"
          f" unexpressed={len(missing)}")


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("moat", "postfix"):
        sys.exit(__doc__)
    n = int(sys.argv[2])
    if sys.argv[1] == "moat":
        moat(n, sys.argv[3])
    else:
        postfix(n, sys.argv[3])


if __name__ == "__main__":
    main()
