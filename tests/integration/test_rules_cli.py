"""`moatd rules` works on the same stored set as the API, through the same operations:
the same validation (errors naming the place), audit rows with actor "cli" and via
"system", a policy generation bump per change that the running daemon loads, and the
dry run on a message file."""

import json
import subprocess

from conftest import MOATD_BIN, wait_for
from test_api_rules import NEWSLETTER, OLD, PROMO, STAFF, generation


def cli(d, *args, want=0, stdin=None):
    p = subprocess.run([MOATD_BIN, "rules", "-c", str(d.conf_path)] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=30, input=stdin)
    assert p.returncode == want, f"moatd rules {args}: rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def audit_rows(d):
    return d.query("SELECT actor, actor_id, via, action, object_id FROM api_audit"
                   " WHERE object_type = 'rule' ORDER BY id")


def test_cli_rules_crud_order_export_import(moatd_factory, tmp_path):
    d = moatd_factory()
    g0 = generation(d)
    ids = []
    for r in (PROMO, OLD):
        f = tmp_path / "rule.json"
        f.write_text(json.dumps(r))
        out = cli(d, "add", f).stdout
        assert out.startswith("rule ") and out.strip().endswith("added"), out
        ids.append(int(out.split()[1]))
    out = cli(d, "add", "-", stdin=json.dumps(dict(STAFF, position=0))).stdout
    ids.insert(0, int(out.split()[1]))
    g1 = generation(d)
    assert g1 >= g0 + 3  # each write bumps it (a shift of positions counts per row moved)
    assert wait_for(lambda: f"policy loaded generation={g1}" in d.log_text(), timeout=5)

    table = cli(d, "list").stdout.splitlines()
    assert table[0].split()[:5] == ["ID", "POS", "ENABLED", "ACTION", "HITS"]
    assert [int(line.split()[0]) for line in table[1:]] == ids
    assert "quarantine" in table[2] and "newsletters" in table[2]
    shown = json.loads(cli(d, "show", ids[1]).stdout)
    assert shown["name"] == "newsletters" and shown["position"] == 1

    cli(d, "disable", ids[1])
    assert json.loads(cli(d, "show", ids[1]).stdout)["enabled"] is False
    assert "no" in cli(d, "list").stdout.splitlines()[2].split()
    cli(d, "enable", ids[1])
    cli(d, "order", ids[2], ids[1], ids[0])
    assert [int(l.split()[0]) for l in cli(d, "list").stdout.splitlines()[1:]] == ids[::-1]
    err = cli(d, "order", ids[2], ids[1], want=1).stderr
    assert "permutation" in err

    # Same validation as the API: the error names the place; nothing is stored.
    bad = dict(PROMO, when={"field": "header", "header": "Subject", "op": "matches",
                            "value": "(x"})
    err = cli(d, "add", "-", stdin=json.dumps(bad), want=1).stderr
    assert "rule.when.value: invalid regular expression" in err, err
    err = cli(d, "add", "-", stdin=json.dumps(dict(PROMO, expect={})), want=1).stderr
    assert "rule.expect: unknown key" in err, err
    cli(d, "show", 9999, want=1)
    cli(d, "delete", "abc", want=1)

    exported = json.loads(cli(d, "export").stdout)
    assert [r["name"] for r in exported] == [OLD["name"], PROMO["name"], STAFF["name"]]
    f = tmp_path / "set.json"
    f.write_text(json.dumps(exported))
    assert cli(d, "import", f).stdout.strip() == "3 rules imported"
    assert json.loads(cli(d, "export").stdout) == exported
    cli(d, "import", "-", "--append", stdin=json.dumps(exported[:1]))
    assert len(json.loads(cli(d, "export").stdout)) == 4
    n = len(audit_rows(d))
    err = cli(d, "import", "-", stdin=json.dumps(exported + [{"name": "x"}]), want=1).stderr
    assert "rules[3].when: required" in err, err
    assert len(json.loads(cli(d, "export").stdout)) == 4 and len(audit_rows(d)) == n

    first = json.loads(cli(d, "export").stdout)
    live = int(cli(d, "list").stdout.splitlines()[1].split()[0])
    cli(d, "delete", live)
    assert json.loads(cli(d, "export").stdout) == first[1:]

    rows = audit_rows(d)
    assert [r[3] for r in rows] == (["rule.create"] * 3 + ["rule.update"] * 2 +
                                    ["rule.order", "rule.import", "rule.import",
                                     "rule.delete"])
    for actor, actor_id, via, _, _ in rows:
        assert (actor, actor_id, via) == ("cli", None, "system")
    assert rows[-1][4] == str(live)


def test_cli_rules_test_dry_run(moatd_factory, tmp_path):
    d = moatd_factory()
    f = tmp_path / "set.json"
    f.write_text(json.dumps([STAFF, OLD, PROMO]))
    cli(d, "import", f)
    msg = tmp_path / "news.eml"
    msg.write_bytes(NEWSLETTER.encode())
    out = json.loads(cli(d, "test", msg, "--from", "news@shop.example",
                         "--to", "carol@example.org", "--to", "old-dave@example.org",
                         "--to", "erin@example.org").stdout)
    r = out["results"][0]
    assert [(x["recipient"], x["action"]) for x in r["recipients"]] == [
        ("carol@example.org", "accept"), ("old-dave@example.org", "redirect"),
        ("erin@example.org", "quarantine")]
    assert r["recipients"][1]["address"] == "helpdesk@example.org"
    ids = [int(l.split()[0]) for l in cli(d, "list").stdout.splitlines()[1:]]
    assert [m["id"] for m in r["matched"]] == ids
    assert r["subject"] == "Big sale \u2014 this week"
    # Nothing counted; a missing file is an error.
    assert all(l.split()[4] == "0" for l in cli(d, "list").stdout.splitlines()[1:])
    cli(d, "test", tmp_path / "missing.eml", want=1)
    cli(d, "test", want=2)
