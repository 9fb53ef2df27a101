"""Mailbox rules as Sieve (docs/mailbox-rules.md, "Sieve"): GET {base}/sieve exports the set as an
RFC 5228 script that Pigeonhole's compiler accepts and whose actions match Moat's own dry run on
the same messages; POST {base}/sieve imports the subset the editor can express, lists what it
left out with the line, and answers 422 naming the line of a script that is not Sieve."""

import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest

from api_client import ADMIN_PASSWORD, Api, admin_api, api_moatd  # noqa: F401

CRLF = "\r\n"
MINE = "/api/v1/account/rules"
SIEVEC = shutil.which("sievec")
SIEVE_TEST = shutil.which("sieve-test")
needs_pigeonhole = pytest.mark.skipif(SIEVEC is None or SIEVE_TEST is None,
                                      reason="dovecot-sieve (sievec, sieve-test) not installed")
# editheader is off by default in Pigeonhole; docs/mailbox-rules.md says how to turn it on
EXT = ["-x", "+editheader"]
# sieve-test refuses to run as root; nobody reads the script and messages
AS_NOBODY = ["-o", "mail_uid=nobody", "-o", "mail_gid=nogroup"]

RULES = [
    {"name": "fleet reports",
     "when": {"field": "header", "header": "Subject", "op": "contains", "value": "noon report"},
     "actions": [{"type": "move", "folder": "Fleet/Reports"}]},
    {"name": "board copy",
     "when": {"any": [{"field": "to_cc", "op": "ends_with", "value": "@board.example.org"},
                      {"field": "header", "header": "X-Ship", "op": "matches",
                       "value": "^HMS [A-Z]+$", "case": "sensitive"}]},
     "except": {"field": "body", "op": "contains", "value": "unsubscribe"},
     "actions": [{"type": "copy", "folder": "Board"}, {"type": "importance", "value": "high"},
                 {"type": "tag_subject", "prefix": "[board] "},
                 {"type": "add_header", "name": "X-Sorted", "value": "board"}]},
    {"name": "big", "enabled": False,
     "when": {"field": "size", "op": "gt", "value": 5000000}, "actions": [{"type": "discard"}]},
    {"name": "spam words",
     "when": {"all": [{"field": "raw_body", "op": "contains", "value": "viagra"},
                      {"not": {"field": "header", "header": "From", "op": "ends_with",
                               "value": "example.org>"}}]},
     "actions": [{"type": "discard"}]},
    {"name": "copy to deputy",
     "when": {"field": "header", "header": "Subject", "op": "starts_with", "value": "URGENT"},
     "actions": [{"type": "forward_copy", "address": "deputy@example.org"}]},
    {"name": "to the purser",
     "when": {"field": "header", "header": "Subject", "op": "is", "value": "invoice"},
     "actions": [{"type": "forward", "address": "purser@example.org"}]},
    {"name": "no circulars",
     "when": {"field": "header", "header": "List-Id", "op": "not_contains", "value": "fleet"},
     "except": {"field": "size", "op": "lt", "value": 1},
     "actions": [{"type": "refuse", "text": "No circulars here"}]},
    {"name": "small keep", "when": {"field": "size", "op": "lt", "value": 100},
     "actions": [{"type": "keep"}]},
    {"name": "sender list", "when": {"field": "sender", "op": "in_list", "value": "friends"},
     "actions": [{"type": "keep"}]},
    {"name": "hold it", "when": {"field": "header", "header": "Subject", "op": "contains",
                                 "value": "quarantine me"},
     "actions": [{"type": "quarantine"}]},
]


def user(admin, name, address):
    admin.post("/api/v1/users", {"name": name, "password": "password-xxxx",
                                 "addresses": [address]}).expect(201)
    api = Api(admin.port)
    api.login(name, "password-xxxx")
    return api


def export_text(api):
    r = api.get(f"{MINE}/sieve").expect(200)
    assert r.headers["content-type"].startswith("text/plain")
    return r.body.decode()


def msg(subject, body="hello", to="ann@example.org", extra=()):
    return CRLF.join([f"From: Master <master@ship.example>", f"To: {to}", f"Subject: {subject}",
                      *extra, "", body, ""])


@needs_pigeonhole
def test_export_passes_sievec_and_import_round_trips(admin_api, tmp_path):
    d, admin = admin_api
    ann = user(admin, "ann", "ann@example.org")
    ann.post(f"{MINE}/import", {"rules": RULES, "mode": "replace"}).expect(200)
    text = export_text(ann)
    # every rule is there by name; what Sieve cannot express is a comment naming the rule
    for r in RULES[:8]:
        assert f"# rule: {r['name']}\n" in text
    assert "# not exported: rule sender list: operator in_list" in text
    assert "# not exported: rule hold it: action quarantine" in text
    assert re.search(r'^require \[.*"fileinto".*"copy".*"body".*"regex".*"reject".*'
                     r'"editheader".*"variables".*"mailbox".*\];$', text, re.M)
    script = tmp_path / "moat.sieve"
    script.write_text(text)
    cc = subprocess.run([SIEVEC, *EXT, str(script), str(tmp_path / "moat.svbin")],
                        capture_output=True, text=True, timeout=60)
    assert cc.returncode == 0, cc.stdout + cc.stderr
    # a user who imports the export gets the same rules (minus the two left out) back
    bob = user(admin, "bob", "bob@example.org")
    got = bob.post(f"{MINE}/sieve", raw=text.encode(), content_type="text/plain").expect(200).json
    assert got["imported"] == 8 and got["skipped"] == []
    theirs = [{k: v for k, v in r.items() if k in ("name", "when", "except", "actions")}
              for r in bob.get(f"{MINE}/export").expect(200).json]
    want = [dict(r) for r in RULES[:8]]
    for w in want:
        w.setdefault("except", None)
    assert [t["name"] for t in theirs] == [w["name"] for w in want]
    for t, w in zip(theirs, want):
        assert t["actions"] == w["actions"], t
        assert t["when"] == w["when"] and t["except"] == w["except"], t
    assert [r["enabled"] for r in bob.get(f"{MINE}/export").expect(200).json][2] is False
    # and exporting that again gives the same script, comments aside
    again = export_text(bob)
    strip = lambda s: [ln for ln in s.splitlines() if not ln.startswith("#")]  # noqa: E731
    assert strip(again) == strip(text)


def sieve_outcome(script, eml):
    out = subprocess.run([SIEVE_TEST, *AS_NOBODY, *EXT, "-r", "ann@example.org",
                          "-f", "sender@ship.example", str(script), str(eml)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    got = set()
    for line in out.stdout.splitlines():
        m = re.match(r"\s*\* store message in folder: (.*)$", line)
        if m:
            got.add(("folder", m.group(1)))
        m = re.match(r"\s*\* redirect message to: (.*)$", line)
        if m:
            got.add(("redirect", m.group(1).strip("<>")))
        if re.match(r"\s*\* reject message", line):
            got.add(("reject",))
    return got


def moat_outcome(api, raw):
    o = api.post(f"{MINE}/test", {"message": raw}).expect(200).json["outcome"]
    got = set()
    act = o["action"]
    if act == "refuse":
        return {("reject",)}
    if act == "discard":
        return set()
    if act in ("redirect", "forward"):
        got.add(("redirect", o["address"]))
    else:
        got.add(("folder", o["folder"] or "INBOX"))
    got |= {("folder", f) for f in o["copy_folders"]}
    got |= {("redirect", a) for a in o["forward_copies"]}
    return got


@needs_pigeonhole
def test_sieve_test_gives_the_same_outcome_as_the_dry_run(admin_api, request):
    d, admin = admin_api
    ann = user(admin, "ann", "ann@example.org")
    ann.post(f"{MINE}/import", {"rules": RULES, "mode": "replace"}).expect(200)
    # pytest's tmp_path is private to root: sieve-test runs as nobody
    tmp = tempfile.mkdtemp(prefix="moat-sieve-", dir="/tmp")
    os.chmod(tmp, 0o755)
    request.addfinalizer(lambda: shutil.rmtree(tmp, ignore_errors=True))
    tmp_path = pathlib.Path(tmp)
    script = tmp_path / "moat.sieve"
    script.write_text(export_text(ann))
    pad = "x" * 200
    fleet = ("List-Id: <fleet.example.org>",)
    cases = {
        "noon": msg("the noon report", pad, extra=fleet),
        "board": msg("agenda", pad, to="chair@board.example.org", extra=fleet),
        "board-unsub": msg("agenda", pad + " unsubscribe", to="chair@board.example.org",
                           extra=fleet),
        "hms": msg("agenda", pad, extra=fleet + ("X-Ship: HMS VICTORY",)),
        "hms-lower": msg("agenda", pad, extra=fleet + ("X-Ship: hms victory",)),
        "spam": msg("offer", pad + " viagra", extra=fleet),
        "urgent": msg("URGENT: fuel", pad, extra=fleet),
        "invoice": msg("invoice", pad, extra=fleet),
        "circular": msg("news", pad, extra=("List-Id: <news.example.net>",)),
        "small": msg("hi", "", extra=fleet)[:90],
        "plain": msg("nothing special", pad, extra=fleet),
    }
    seen = set()
    for name, raw in cases.items():
        eml = tmp_path / f"{name}.eml"
        eml.write_bytes(raw.encode())
        want = moat_outcome(ann, raw)
        got = sieve_outcome(script, eml)
        assert got == want, f"{name}: sieve-test {got}, moat {want}"
        seen.add(frozenset(want))
    assert len(seen) >= 6  # the messages reach different outcomes


def test_import_of_a_hand_written_script(admin_api):
    d, admin = admin_api
    ann = user(admin, "ann", "ann@example.org")
    script = "\n".join([
        'require ["fileinto", "envelope", "copy", "reject", "imap4flags", "vacation"];',  # 1
        '# rule: From the boss',                                                     # 2
        'if address :is "from" "boss@example.org" {',                                # 3
        '    fileinto "Boss";',                                                      # 4
        '    stop;',                                                                 # 5
        '} elsif header :matches "subject" "*[fleet]*" {',                           # 6
        '    fileinto :copy "Fleet";',                                               # 7
        '    addflag "\\\\Seen";',                                                   # 8
        '} else {',                                                                  # 9
        '    keep;',                                                                 # 10
        '}',                                                                         # 11
        'if anyof (size :over 1M, not exists "Date") { discard; }',                  # 12
        'if envelope :domain :is "from" "spam.example" { reject "no"; }',            # 13
        'if header :value "gt" "X-Spam-Score" "5" { discard; }',                     # 14
        'vacation "away";',                                                          # 15
        'if body :contains "lottery" { redirect "abuse@example.org"; keep; }',        # 16
    ])
    got = ann.post(f"{MINE}/sieve", {"script": script, "mode": "replace"}).expect(200).json
    assert got["imported"] == 6
    assert [(s["line"], s["reason"].split(" ")[0]) for s in got["skipped"]] == [
        (8, "command"), (14, "argument"), (15, "command"), (15, "a"), (16, "keep")], got
    rules = ann.get(f"{MINE}/export").expect(200).json
    assert [r["name"] for r in rules] == ["From the boss", "Sieve line 6", "Sieve line 9",
                                          "Sieve line 12", "Sieve line 13", "Sieve line 16"]
    assert rules[0]["when"] == {"field": "header", "header": "from", "op": "contains",
                                "value": "boss@example.org"}
    assert rules[0]["actions"] == [{"type": "move", "folder": "Boss"}]
    # elsif: its own test, except what came before
    assert rules[1]["when"] == {"field": "header", "header": "subject", "op": "contains",
                                "value": "[fleet]"}
    assert rules[1]["except"] == rules[0]["when"]
    assert rules[1]["actions"] == [{"type": "copy", "folder": "Fleet"}]
    assert rules[2]["when"] == {"not": {"any": [rules[0]["when"], rules[1]["when"]]}}
    assert rules[2]["actions"] == [{"type": "keep"}]
    assert rules[3]["when"] == {"any": [
        {"field": "size", "op": "gt", "value": 1048576},
        {"field": "header", "header": "Date", "op": "not_matches", "value": "^"}]}
    assert rules[4]["when"] == {"field": "sender", "op": "ends_with", "value": "@spam.example"}
    assert rules[4]["actions"] == [{"type": "refuse", "text": "no"}]
    # redirect ends the rules as a forward; the keep after it is listed, not imported
    assert rules[5]["actions"] == [{"type": "forward", "address": "abuse@example.org"}]
    # append keeps what is there
    more = ann.post(f"{MINE}/sieve?mode=append", raw=b'keep;', content_type="text/plain")
    assert more.expect(200).json["imported"] == 1
    assert len(ann.get(f"{MINE}/export").expect(200).json) == 7


@pytest.mark.parametrize("script,line", [
    ('if header :is "Subject" "x" {\n  fileinto "A"\n}\n', 3),
    ('require "fileinto";\n\nif true { keep; \n', 4),
    ('keep;\nif header :is "Subject" "unterminated {\n keep;\n}\n', 2),
    ('# ok\nelse { keep; }\n', 2),
    ('keep;\n}\n', 2),
    ('keep;\n\n\nif size :over 99999999999999999999 { keep; }\n', 4),
    ('if ' + 'not ' * 40 + 'true { keep; }\n', 1),
])
def test_a_script_that_is_not_sieve_is_422_naming_the_line(admin_api, script, line):
    d, admin = admin_api
    ann = user(admin, "ann", "ann@example.org")
    ann.post(MINE, RULES[0]).expect(201)
    r = ann.post(f"{MINE}/sieve", raw=script.encode(), content_type="text/plain")
    r.expect(422, code="invalid_sieve", field="script")
    assert f"line {line}:" in r.error["message"], r.error
    # nothing changed
    assert len(ann.get(f"{MINE}/export").expect(200).json) == 1


def test_sieve_scope_and_body_errors(admin_api):
    d, admin = admin_api
    ann = user(admin, "ann", "ann@example.org")
    uid = [u for u in admin.get("/api/v1/users").expect(200).json["items"]
           if u["name"] == "ann"][0]["id"]
    ann.post(MINE, RULES[0]).expect(201)
    # an administrator acting for the user sees the same script; another user is 404
    assert admin.get(f"/api/v1/users/{uid}/rules/sieve").expect(200).body.decode() == \
        export_text(ann)
    ann.get(f"/api/v1/users/{uid}/rules/sieve").expect(404)
    ann.post(f"{MINE}/sieve", {"script": 5}).expect(422, field="script")
    ann.post(f"{MINE}/sieve", {"script": "keep;", "mode": "merge"}).expect(422, field="mode")
    ann.post(f"{MINE}/sieve", {"script": "keep;", "extra": 1}).expect(422, field="extra")
