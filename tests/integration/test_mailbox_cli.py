"""`moatd mailbox-rules OWNER ...` (and `moatd rules --user NAME ...`) works on one user's or
group's mailbox rule set in the same store as the API, through the same operations: the same
checks (errors naming the place in the rule), audit rows with actor "cli" and via "system",
the dry run, Sieve export and import, and a running daemon applies what the CLI saved to the
next message at a real downstream."""

import json
import sqlite3
import subprocess

from conftest import MOATD_BIN, message
from peers_delivery import header_value, wait_for
from api_client import api_moatd  # noqa: F401 (fixture)
from test_mailbox_rules import d, deliver, delivered_to, downstream, mailbox_applied  # noqa: F401

MOVE = {"name": "reports",
        "when": {"field": "header", "header": "Subject", "op": "contains", "value": "noon report"},
        "actions": [{"type": "move", "folder": "Fleet/Reports"}, {"type": "stop"}]}
TAG = {"name": "boss",
       "when": {"field": "sender", "op": "is", "value": "boss@example.org"},
       "actions": [{"type": "tag_subject", "prefix": "[boss] "}, {"type": "keep"}]}


def cli(d, *args, want=0, stdin=None, command="mailbox-rules"):
    p = subprocess.run([MOATD_BIN, command, "-c", str(d.conf_path)] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=60, input=stdin)
    assert p.returncode == want, f"moatd {command} {args}: rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def directory(d, users=(), groups=()):
    con = sqlite3.connect(str(d.db_path), timeout=10)
    try:
        for name, addrs in users:
            uid = con.execute("INSERT INTO dir_user (name, created) VALUES (?, 0)",
                              (name,)).lastrowid
            for i, a in enumerate(addrs):
                con.execute("INSERT INTO dir_address (address, user_id, kind) VALUES (?, ?, ?)",
                            (a, uid, "primary" if i == 0 else "alias"))
        for address in groups:
            con.execute("INSERT INTO dir_group (address, name, created) VALUES (?, ?, 0)",
                        (address, address))
        con.commit()
    finally:
        con.close()


def audit_rows(d):
    return d.query("SELECT actor, actor_id, via, action FROM api_audit"
                   " WHERE object_type = 'mailbox_rule' ORDER BY id")


def ids_of(d, owner, command="mailbox-rules", *pre):
    out = cli(d, *pre, owner, "list", command=command).stdout.splitlines()
    assert out[0].split() == ["ID", "POS", "ENABLED", "HITS", "NAME"]
    return [int(line.split()[0]) for line in out[1:]]


def test_cli_crud_order_checks_and_audit(moatd_factory, tmp_path):
    d = moatd_factory()
    directory(d, users=[("ann", ["ann@example.org", "a@example.org"]),
                        ("bob", ["bob@example.org"])], groups=["fleet@example.org"])
    f = tmp_path / "rule.json"
    f.write_text(json.dumps(MOVE))
    out = cli(d, "ann", "add", f).stdout
    assert out.startswith("rule ") and out.strip().endswith("added"), out
    first = int(out.split()[1])
    # by address too, and placed first with "position"
    out = cli(d, "a@example.org", "add", "-", stdin=json.dumps(dict(TAG, position=0))).stdout
    second = int(out.split()[1])
    assert ids_of(d, "ann") == [second, first]
    shown = json.loads(cli(d, "ann", "show", first).stdout)
    assert shown["actions"] == MOVE["actions"] and shown["position"] == 1
    # the set is the API's: one row per owner in mailbox_ruleset, rules in mailbox_rule
    assert d.query("SELECT count(*) FROM mailbox_ruleset r JOIN dir_user u ON u.id = r.user_id"
                   " WHERE u.name = 'ann'")[0][0] == 1
    cli(d, "ann", "disable", first)
    assert json.loads(cli(d, "ann", "show", first).stdout)["enabled"] is False
    assert [int(x.split()[0]) for x in
            cli(d, "ann", "list", "--disabled").stdout.splitlines()[1:]] == [first]
    assert [int(x.split()[0]) for x in
            cli(d, "ann", "list", "--search", "boss@").stdout.splitlines()[1:]] == [second]
    cli(d, "ann", "enable", first)
    cli(d, "ann", "order", first, second)
    assert ids_of(d, "ann") == [first, second]
    assert "permutation" in cli(d, "ann", "order", first, want=1).stderr

    # the same checks as the API, naming the place; nothing stored
    bad = dict(MOVE, actions=[{"type": "move", "folder": "A/../B"}])
    err = cli(d, "ann", "add", "-", stdin=json.dumps(bad), want=1).stderr
    assert "rule.actions[0].folder" in err, err
    bad = dict(MOVE, actions=[{"type": "forward", "address": "x@elsewhere.example"}])
    err = cli(d, "ann", "add", "-", stdin=json.dumps(bad), want=1).stderr
    assert "rule.actions[0].address" in err, err
    assert ids_of(d, "ann") == [first, second]
    # another owner's rule id is no rule of this set
    cli(d, "bob", "show", first, want=1)
    cli(d, "bob", "delete", first, want=1)
    assert ids_of(d, "bob") == []
    # unknown owners and commands
    assert "no such user" in cli(d, "nobody", "list", want=1).stderr
    assert "no such group" in cli(d, "@none@example.org", "list", want=1).stderr
    cli(d, "ann", "frobnicate", want=2)
    cli(d, "ann", want=2)

    # export / import round trip, the limit of the set applies (mailbox_rules_max)
    exported = json.loads(cli(d, "ann", "export").stdout)
    assert [r["name"] for r in exported] == ["reports", "boss"]
    f = tmp_path / "set.json"
    f.write_text(json.dumps(exported))
    assert cli(d, "@fleet@example.org", "import", f).stdout.strip() == \
        "2 rules imported, 2 in the set"
    cli(d, "@fleet@example.org", "import", "-", "--append", stdin=json.dumps(exported[:1]))
    assert len(json.loads(cli(d, "@fleet@example.org", "export").stdout)) == 3
    err = cli(d, "-o", "mailbox_rules_max=3", "ann", "import", "-", "--append",
              stdin=json.dumps(exported), want=1).stderr
    assert "mailbox_rules_max" in err, err
    assert json.loads(cli(d, "ann", "export").stdout) == exported
    # `moatd rules --user` / `--group` is the same command
    assert ids_of(d, "ann", "rules", "--user") == [first, second]
    assert len(ids_of(d, "fleet@example.org", "rules", "--group")) == 3
    cli(d, "--user", "ann", "delete", second, command="rules")
    assert ids_of(d, "ann") == [first]

    rows = audit_rows(d)
    assert [r[3] for r in rows] == (["mailbox_rule.create"] * 2 + ["mailbox_rule.update"] * 2 +
                                    ["mailbox_rule.order", "mailbox_rule.import",
                                     "mailbox_rule.import", "mailbox_rule.delete"])
    assert all(r[:3] == ("cli", None, "system") for r in rows)


def test_cli_dry_run_and_sieve(moatd_factory, tmp_path):
    d = moatd_factory()
    directory(d, users=[("ann", ["ann@example.org"])])
    cli(d, "ann", "import", "-", stdin=json.dumps([TAG, MOVE]))
    msg = tmp_path / "m.eml"
    msg.write_bytes(b"From: master@ship.example\r\nTo: ann@example.org\r\n"
                    b"Subject: noon report day 3\r\n\r\nall well\r\n")
    out = json.loads(cli(d, "ann", "test", msg).stdout)
    assert out["address"] == "ann@example.org"
    assert [(r["name"], r["matched"]) for r in out["rules"]] == [("boss", False),
                                                                 ("reports", True)]
    assert out["outcome"]["action"] == "move" and out["outcome"]["folder"] == "Fleet/Reports"
    # nothing counted
    assert all(line.split()[3] == "0" for line in cli(d, "ann", "list").stdout.splitlines()[1:])
    cli(d, "ann", "test", tmp_path / "missing.eml", want=1)

    script = cli(d, "ann", "sieve-export").stdout
    assert 'fileinto :create "Fleet/Reports";' in script and "# rule: boss" in script
    sieve = tmp_path / "in.sieve"
    sieve.write_text('require ["fileinto", "vacation"];\n'
                     'if header :contains "Subject" "invoice" { fileinto "Bills"; stop; }\n'
                     'vacation "away";\n')
    got = json.loads(cli(d, "ann", "sieve-import", sieve, "--append").stdout)
    assert got["imported"] == 1 and got["total"] == 3
    assert got["skipped"] and {s["line"] for s in got["skipped"]} == {3}
    assert json.loads(cli(d, "ann", "export").stdout)[2]["actions"][0] == \
        {"type": "move", "folder": "Bills"}
    sieve.write_text('if header :contains "Subject" "x" { fileinto "A" \n')
    err = cli(d, "ann", "sieve-import", sieve, want=1).stderr
    assert "line" in err
    assert len(json.loads(cli(d, "ann", "export").stdout)) == 3


def test_a_running_daemon_applies_a_set_saved_by_the_cli(d, downstream):  # noqa: F811
    directory(d, users=[("carol", ["carol@example.org"])])
    cli(d, "carol", "import", "-", stdin=json.dumps([MOVE]))
    mailbox_applied(d)
    assert deliver(d, ["carol@example.org"], message(subject="noon report 7")).code == 250
    assert wait_for(lambda: delivered_to(downstream, "carol@example.org"), timeout=10)
    got = delivered_to(downstream, "carol@example.org")[0]
    assert header_value(got, b"X-Moat-Folder") == "Fleet/Reports"
    assert wait_for(lambda: cli(d, "carol", "list").stdout.splitlines()[1].split()[3] == "1",
                    timeout=10), "the hit is counted on the set the CLI wrote"
