"""The contract: api/openapi.yaml (OpenAPI 3.1) describes every route of the routing table
in daemon/http/http.c, and real responses of every endpoint - successes and errors - validate
against its response schemas (JSON Schema 2020-12, python3-jsonschema)."""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest
import yaml

import api_client
from conftest import message
from api_client import ADMIN_PASSWORD, Api, admin_api, api_moatd, insert_log_rows, log_row  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO / "api" / "openapi.yaml"
SPEC = yaml.safe_load(SPEC_PATH.read_text())
REDOCLY = REPO / "api" / "node_modules" / ".bin" / "redocly"
METHODS = ("get", "post", "put", "patch", "delete")


def implemented_routes():
    src = (REPO / "daemon" / "http" / "http.c").read_text()
    table = src[src.index("static const struct http_route routes[]"):]
    table = table[:table.index("};")]
    routes = {(m.lower(), p) for m, p in re.findall(r'\{ "([A-Z]+)", "([^"]+)",', table)}
    # MAILBOX_ROUTES(base, flags): one handler set under several bases
    macro = re.findall(r'\{ "([A-Z]+)", base(?: "([^"]*)")?,', table)
    for base in re.findall(r'^\s*MAILBOX_ROUTES\("([^"]+)"', table, re.M):
        routes |= {(m.lower(), base + tail) for m, tail in macro}
    return routes


def spec_routes():
    return {(m, p) for p, item in SPEC["paths"].items() for m in item if m in METHODS}


def template_match(template, path):
    rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
    return re.match(rx, path) is not None


def find_operation(method, path):
    path = path.split("?", 1)[0]
    for template, item in SPEC["paths"].items():
        if template_match(template, path) and method.lower() in item:
            return template, item[method.lower()]
    return None, None


def resolve(obj):
    while isinstance(obj, dict) and "$ref" in obj:
        node = SPEC
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def validate(resp):
    template, op = find_operation(resp.method, resp.path)
    if op is None:
        # A method or path the API does not have: 404/405 with the common error body.
        assert resp.status in (404, 405), f"{resp.method} {resp.path}: not in api/openapi.yaml"
        schema = {"$ref": "#/components/schemas/Error", "components": SPEC["components"]}
        jsonschema.Draft202012Validator(schema).validate(resp.json)
        return None
    responses = op["responses"]
    key = str(resp.status)
    assert key in responses, (f"{resp.method} {template}: status {resp.status} not documented "
                              f"(documented: {sorted(responses)}); body {resp.body[:300]!r}")
    r = resolve(responses[key])
    content = r.get("content")
    if not content:
        assert resp.body == b"", f"{resp.method} {template} {resp.status}: unexpected body"
        return template
    ctype = resp.headers.get("content-type", "")
    if "application/json" in content:
        assert ctype.startswith("application/json"), f"{template}: content-type {ctype}"
        schema = dict(content["application/json"]["schema"])
        schema["components"] = SPEC["components"]
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        try:
            jsonschema.Draft202012Validator(schema).validate(resp.json)
        except jsonschema.ValidationError as e:
            raise AssertionError(f"{resp.method} {template} {resp.status}: {e.message}\n"
                                 f"at {list(e.absolute_path)}; body {resp.body[:500]!r}")
    else:
        media = ctype.split(";", 1)[0].strip()
        assert media in content, f"{template}: content-type {ctype}, documented {sorted(content)}"
    return template


def test_spec_is_openapi_31_and_complete():
    assert SPEC["openapi"].startswith("3.1")
    impl, spec = implemented_routes(), spec_routes()
    assert impl, "no routes found in daemon/http/http.c"
    missing = impl - spec
    assert not missing, f"implemented routes missing from api/openapi.yaml: {sorted(missing)}"
    extra = spec - impl
    assert not extra, f"api/openapi.yaml documents routes that do not exist: {sorted(extra)}"
    jsonschema.Draft202012Validator.check_schema(
        {"$defs": SPEC["components"]["schemas"]})


PARAMETER_KEYS = {"name", "in", "description", "required", "deprecated", "allowEmptyValue", "style",
                  "explode", "allowReserved", "schema", "example", "examples", "content"}


def null_keys(node, path=""):
    """Keys without a value: what an unquoted comma inside a {...} flow mapping leaves
    behind ({description: client address, exact, ...} reads as description "client
    address" plus a key "exact")."""
    found = []
    if isinstance(node, dict):
        for k, v in node.items():
            if v is None:
                found.append(f"{path}/{k}")
            found += null_keys(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += null_keys(v, f"{path}/{i}")
    return found


def test_spec_reads_as_written():
    bogus = null_keys(SPEC)
    assert not bogus, f"api/openapi.yaml has keys without a value (a cut description?): {bogus}"
    ids = {}
    for template, item in SPEC["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            oid = op.get("operationId")
            assert oid and re.fullmatch(r"[a-z][A-Za-z]+", oid), f"{method} {template}: operationId {oid!r}"
            assert oid not in ids, f"operationId {oid} of {method} {template} is also {ids[oid]}"
            ids[oid] = f"{method} {template}"
            for prm in op.get("parameters", []) + item.get("parameters", []):
                prm = resolve(prm)
                extra = set(prm) - PARAMETER_KEYS
                assert not extra, f"{method} {template}: parameter {prm.get('name')} has keys {sorted(extra)}"
    # the descriptions the lint once found cut, whole
    params = {p["name"]: p for p in map(resolve, SPEC["paths"]["/api/v1/messages"]["get"]["parameters"])}
    assert params["client"]["description"] == "client address, exact"
    assert params["recipient"]["description"] == "one of the recipients, case-insensitive"


def test_spec_reads_the_same_as_redocly(tmp_path):
    """The contract tests read the yaml with PyYAML (YAML 1.1); the linter and API tools read
    it as YAML 1.2. Both must see the same document: Redocly's bundle, as JSON, equals SPEC."""
    node = shutil.which("node")
    if not REDOCLY.exists() or node is None:
        if os.environ.get("CI"):
            pytest.fail(f"{REDOCLY} or node missing (scripts/dev.sh test runs npm ci in api/)")
        pytest.skip("Redocly CLI not installed (cd api && npm ci)")
    out = tmp_path / "bundle.json"
    env = dict(os.environ, REDOCLY_TELEMETRY="off", REDOCLY_SUPPRESS_UPDATE_NOTICE="true")
    r = subprocess.run([node, str(REDOCLY), "bundle", str(SPEC_PATH), "--ext", "json", "-o", str(out)],
                       cwd=REPO / "api", env=env, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"redocly bundle: {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert json.loads(out.read_text()) == SPEC


QUARANTINE_HTML = (b"From: s@example.net\r\nTo: a@example.org\r\nSubject: contract held\r\n"
                   b"Message-ID: <held@example.net>\r\nMIME-Version: 1.0\r\n"
                   b"Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
                   b"--b1\r\nContent-Type: text/plain\r\n\r\nplain\r\n"
                   b"--b1\r\nContent-Type: text/html\r\n\r\n<p>html <b>part</b></p>\r\n"
                   b"--b1--\r\n")


def quarantine_calls(d, admin):
    """Every quarantine route, for a message a server rule quarantined over real SMTP."""
    from conftest import qid_of
    from peers_policy import set_rules
    from test_content_rules import subject_is
    set_rules(d, [{"name": "hold contract", "when": subject_is("contract held"),
                   "action": {"type": "quarantine", "kind": "spam"}}])
    c = d.raw()
    try:
        c.ehlo()
        qid = qid_of(c.transaction("s@example.net", ["a@example.org", "b@example.org"],
                                   QUARANTINE_HTML))
    finally:
        c.close()
    set_rules(d, [])
    ids = [i for (i,) in d.query("SELECT id FROM quarantine WHERE qid = ? ORDER BY rcpt", (qid,))]
    assert len(ids) == 2, ids
    first = admin.get("/api/v1/quarantine?sort=size&order=asc&limit=1").expect(200).json
    admin.get(f"/api/v1/quarantine?sort=size&order=asc&limit=1&cursor={first['next_cursor']}")
    admin.get("/api/v1/quarantine?sender=s*&kind=spam&subject=contract&q=example"
              "&since=2000-01-01T00:00:00Z&sort=recipient")
    admin.get("/api/v1/quarantine?cursor=1.x")
    admin.get("/api/v1/quarantine/count?recipient=A@example.org&reason=hold")
    admin.get("/api/v1/quarantine/count?kind=nope")
    admin.get(f"/api/v1/quarantine/{ids[0]}").expect(200)
    admin.get("/api/v1/quarantine/999999").expect(404)
    admin.get(f"/api/v1/quarantine/{ids[0]}/raw").expect(200)
    admin.get(f"/api/v1/quarantine/{ids[0]}/html").expect(200)
    admin.get(f"/api/v1/quarantine/{ids[0]}/html?x=1").expect(422)
    admin.post("/api/v1/quarantine/release", {"ids": [ids[0]]}).expect(200)
    admin.post("/api/v1/quarantine/release", {"ids": [ids[0]]}).expect(404, field="ids")
    # Learning from the item still held and from its message log entry.
    admin.post(f"/api/v1/quarantine/{ids[1]}/learn", {"class": "spam"}).expect(200)
    admin.post(f"/api/v1/quarantine/{ids[1]}/learn", {"class": "maybe"}).expect(
        422, field="class")
    log_id = d.log_rows("qid = ?", (qid,))[0]["id"]
    admin.post(f"/api/v1/messages/{log_id}/learn", {"class": "ham"}).expect(200)
    admin.post("/api/v1/messages/99999999/learn", {"class": "ham"}).expect(404)
    admin.post("/api/v1/quarantine/release", {"ids": []}).expect(422, field="ids")
    admin.post("/api/v1/quarantine/delete", {"filter": {}}).expect(422, field="all")
    admin.post("/api/v1/quarantine/delete", {"filter": {"subject": "contract held"},
                                             "sender_list": "block"}).expect(200)
    admin.post("/api/v1/quarantine/delete", raw=b"{").expect(400)


def sieve_calls(admin, uid, group):
    """{base}/sieve under the three bases of the mailbox rules: export and import."""
    script = 'require "fileinto";\nif header :contains "Subject" "report" { fileinto "R"; }\n'
    for base in ("/api/v1/account/rules", f"/api/v1/users/{uid}/rules",
                 f"/api/v1/directory/groups/{group}/rules"):
        admin.post(f"{base}/sieve", raw=script.encode(), content_type="text/plain").expect(200)
        admin.post(f"{base}/sieve", {"script": script, "mode": "append"}).expect(200)
        admin.get(f"{base}/sieve").expect(200)
    admin.post("/api/v1/account/rules/sieve", {"script": "keep"}).expect(422, field="script")
    admin.post("/api/v1/account/rules/sieve", raw=b"keep;", content_type="text/csv").expect(415)


def apply_quarantine_calls(admin, uid, group):
    """{base}/apply-quarantine under the three bases of the mailbox rules."""
    for base in ("/api/v1/account/rules", f"/api/v1/users/{uid}/rules",
                 f"/api/v1/directory/groups/{group}/rules"):
        r = admin.post(f"{base}/apply-quarantine").expect(200)
        assert set(r.json) == {"released", "deleted", "kept", "examined", "more"}, r.json
    admin.post("/api/v1/users/999999/rules/apply-quarantine").expect(404)


# Routes whose 2xx answers a contract test of their own area below asserts (each needs a
# setup of its own); the general run leaves them to it.
AREA_ROUTES = {
    "self_service": lambda path: "/senders" in path or "/managers" in path,
    "digest": lambda path: "digest" in path or path.startswith("/q/"),
    "mailbox": lambda path: path.startswith(("/api/v1/account/rules", "/api/v1/users/{id}/rules",
                                             "/api/v1/directory/groups/{address}/rules")),
    # test_account_alerts.py::test_accounts_routes_match_contract
    "accounts": lambda path: path.startswith("/api/v1/accounts"),
}


def area_routes(area):
    return {r for r in implemented_routes() if AREA_ROUTES[area](r[1])}


def test_real_responses_match_contract(admin_api):
    d, admin = admin_api
    api_client.RECORDED.clear()
    now = int(time.time() * 1000)
    insert_log_rows(d.db_path, [log_row(i, now - i * 1000, result="refused", check_name="dnsbl",
                                        reason="listed") if i % 2 else log_row(i, now - i * 1000)
                                for i in range(20)]
                    + [log_row(100 + i, now - i, result="refused", check_name="unknown_recipient",
                               reason="no such user") for i in range(3)])
    anon = Api(d.http_port)
    anon.get("/healthz")
    anon.get("/metrics")
    anon.post("/api/v1/session", {"username": "admin", "password": "wrong-pass"})
    anon.post("/api/v1/session", raw=b"{")
    anon.post("/api/v1/session", {"username": "admin"})
    anon.post("/api/v1/session", raw=b"x=1", content_type="text/plain")
    anon.get("/api/v1/session")
    anon.request("OPTIONS", "/healthz")

    admin.get("/metrics")
    admin.get("/api/v1/session")
    admin.get("/api/v1/account")
    u = admin.post("/api/v1/users", {"name": "ulla", "password": "ulla-pass-1"}).json
    admin.post("/api/v1/users", {"name": "ulla"})
    admin.post("/api/v1/users", {"name": 1})
    admin.get("/api/v1/users?limit=1")
    admin.get("/api/v1/users?limit=0")
    admin.get(f"/api/v1/users/{u['id']}")
    admin.get("/api/v1/users/999999")
    admin.patch(f"/api/v1/users/{u['id']}", {"disabled": False, "role": "user"})
    admin.patch(f"/api/v1/users/{u['id']}", {"bogus": 1})
    me = admin.get("/api/v1/account").json["id"]
    admin.patch(f"/api/v1/users/{me}", {"role": "user"})
    admin.delete(f"/api/v1/users/{me}")
    tok = admin.post("/api/v1/tokens", {"name": "c1", "scope": "admin"}).json
    admin.post("/api/v1/tokens", {"name": "c1"})
    admin.get("/api/v1/tokens")
    admin.get("/api/v1/tokens?revoked=maybe")
    admin.get(f"/api/v1/tokens/{tok['id']}")
    admin.get("/api/v1/tokens/999999")
    t = Api(d.http_port, token=tok["token"])
    t.get("/api/v1/session")
    t.delete("/api/v1/session")
    admin.delete(f"/api/v1/tokens/{tok['id']}")
    admin.delete("/api/v1/tokens/999999")
    t.get("/api/v1/account")
    admin.get("/api/v1/messages?limit=5")
    first = admin.get("/api/v1/messages?limit=5&result=refused").json["items"][0]
    admin.get("/api/v1/messages?from=x")
    admin.get(f"/api/v1/messages/{first['id']}")
    admin.get("/api/v1/messages/999999")
    admin.get(f"/api/v1/messages/{first['id']}/timeline")
    insert_log_rows(d.db_path, [log_row(900, now, qid="QCONTRACT0")])
    admin.get("/api/v1/timeline?qid=QCONTRACT0")
    admin.get("/api/v1/stats/messages?bucket=hour")
    admin.get("/api/v1/stats/messages?bucket=year")
    admin.get("/api/v1/stats/top?by=check&result=refused&limit=5")
    admin.get("/api/v1/stats/top?by=recipient_domain")
    admin.get("/api/v1/stats/top?by=nope")
    admin.get("/api/v1/stats/harvest")
    admin.get("/api/v1/stats/harvest?limit=101")
    admin.get("/api/v1/stats/harvest?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z")
    admin.get("/api/v1/stats/checks?days=7")
    admin.get("/api/v1/stats/dnsbl")
    admin.get("/api/v1/audit?limit=3")
    admin.get("/api/v1/audit?cursor=x")

    # Policy, directory, queue.
    e = admin.post("/api/v1/policy/entries", {"list": "conn_deny", "value": "198.51.100.0/24"}).json
    admin.post("/api/v1/policy/entries", {"list": "conn_deny", "value": "198.51.100.0/24"})
    admin.post("/api/v1/policy/entries", {"list": "x", "value": "1"})
    admin.get("/api/v1/policy/entries")
    admin.get(f"/api/v1/policy/entries/{e['id']}")
    admin.patch(f"/api/v1/policy/entries/{e['id']}", {"comment": "edited"})
    admin.patch(f"/api/v1/policy/entries/{e['id']}", {"value": "300.1.1.1"})
    admin.patch("/api/v1/policy/entries/999999", {"comment": "x"})
    admin.delete(f"/api/v1/policy/entries/{e['id']}")
    admin.get(f"/api/v1/policy/entries/{e['id']}")
    admin.get("/api/v1/policy/settings")
    admin.put("/api/v1/policy/settings/conn_deny_text", {"value": "no {ip}"})
    admin.put("/api/v1/policy/settings/nope", {"value": "1"})
    admin.delete("/api/v1/policy/settings/conn_deny_text")
    admin.post("/api/v1/policy/dnsbl", {"zone": "bl.example"})
    admin.post("/api/v1/policy/dnsbl", {"zone": "bl.example"})
    admin.get("/api/v1/policy/dnsbl")
    admin.patch("/api/v1/policy/dnsbl/bl.example", {"weight": 3})
    admin.patch("/api/v1/policy/dnsbl/bl.example", {"weight": "3"})
    admin.delete("/api/v1/policy/dnsbl/bl.example")
    admin.delete("/api/v1/policy/dnsbl/bl.example")
    admin.get("/api/v1/directory")
    admin.post("/api/v1/directory/groups", {"address": "g@example.org", "members": ["a@b.example"]})
    admin.post("/api/v1/directory/groups", {"address": "g@example.org"})
    admin.post("/api/v1/users", {"name": "withaddr", "addresses": ["w@example.org"]})
    admin.get("/api/v1/directory")
    admin.post("/api/v1/directory/groups/g@example.org/members", {"member": "c@b.example"})
    admin.post("/api/v1/directory/groups/g@example.org/members", {"member": "c@b.example"})
    admin.post("/api/v1/directory/groups/g@example.org/members", {"member": "bad"})
    admin.delete("/api/v1/directory/groups/g@example.org/members/c@b.example")
    admin.delete("/api/v1/directory/groups/g@example.org/members/c@b.example")
    wa = admin.get("/api/v1/users?q=withaddr").json["items"][0]["id"]
    admin.post(f"/api/v1/users/{wa}/addresses", {"address": "w2@example.org", "kind": "alias"})
    admin.post(f"/api/v1/users/{wa}/addresses", {"address": "w2@example.org", "kind": "alias"})
    admin.post(f"/api/v1/users/{wa}/addresses", {"address": "w3@example.org", "kind": "x"})
    admin.post("/api/v1/users/999999/addresses", {"address": "w3@example.org", "kind": "alias"})
    admin.delete(f"/api/v1/users/{wa}/addresses/w2@example.org")
    admin.delete(f"/api/v1/users/{wa}/addresses/w2@example.org")
    admin.delete("/api/v1/directory/groups/g@example.org")
    admin.delete("/api/v1/directory/groups/g@example.org")
    import sqlite3
    with sqlite3.connect(d.db_path) as db:
        db.execute("INSERT INTO account_state (user, suspended, reason, score, updated)"
                   " VALUES ('mallory', 5000, 'account infected', 9, 5000)")
        db.execute("INSERT INTO account_alert (ts, user, kind, score, detail)"
                   " VALUES (5000, 'mallory', 'suspended', 9, 'score=9 senders=3')")
    admin.get("/api/v1/accounts?limit=1")
    admin.get("/api/v1/accounts?limit=x")
    admin.get("/api/v1/accounts/alerts")
    admin.get("/api/v1/accounts/alerts?cursor=x")
    admin.post("/api/v1/accounts/mallory/lift")
    admin.post("/api/v1/accounts/mallory/lift")
    admin.post("/api/v1/accounts/nobody/lift")
    import test_api_policy
    test_api_policy.seed_queue(d)
    admin.get("/api/v1/queue")
    admin.get("/api/v1/queue?state=x")
    admin.get("/api/v1/queue/summary?group=domain&state=held")
    admin.get("/api/v1/queue/summary?group=reason")
    admin.get("/api/v1/queue/summary")
    admin.get("/api/v1/quarantine")
    admin.get("/api/v1/quarantine?recipient=a@example.org&limit=5")
    admin.get("/api/v1/quarantine?bogus=1")
    admin.get("/api/v1/queue/00000000000000A1")
    admin.get("/api/v1/queue/00000000000000FF")
    for act in ("release", "retry", "hold", "delete"):
        admin.post(f"/api/v1/queue/{act}", {"qid": "00000000000000A1"})
    admin.post("/api/v1/queue/delete", {})
    quarantine_calls(d, admin)
    # Server rules.
    import test_api_rules
    r1 = admin.post("/api/v1/rules", test_api_rules.PROMO).json
    r2 = admin.post("/api/v1/rules", dict(test_api_rules.OLD, position=0)).json
    admin.post("/api/v1/rules", {"name": "x", "when": {"field": "size", "op": "contains",
                                                       "value": "1"}, "action": {"type": "hold"}})
    admin.get("/api/v1/rules")
    admin.get("/api/v1/rules?enabled=true")
    admin.get(f"/api/v1/rules/{r1['id']}")
    admin.get("/api/v1/rules/99999")
    admin.put(f"/api/v1/rules/{r1['id']}", dict(test_api_rules.PROMO, comment="c"))
    admin.patch(f"/api/v1/rules/{r1['id']}", {"enabled": False})
    admin.put("/api/v1/rules/order", {"ids": [r1["id"], r2["id"]]})
    admin.put("/api/v1/rules/order", {"ids": [r1["id"]]})
    exported = admin.get("/api/v1/rules/export").json
    admin.post("/api/v1/rules/import", {"rules": exported, "mode": "append"})
    admin.post("/api/v1/rules/test", {"message": test_api_rules.NEWSLETTER,
                                      "recipients": ["old-x@example.org", "y@example.org"]})
    admin.post("/api/v1/rules/test", {"last": 3})
    admin.post("/api/v1/rules/test", {"message": "x", "rules": [{"name": "r", "when": {
        "field": "sender", "op": "is", "value": ""}, "action": {"type": "refuse"}}]})
    admin.delete(f"/api/v1/rules/{r2['id']}")
    # DKIM signing keys.
    admin.post("/api/v1/dkim/keys", {"domain": "example.org", "selector": "c1"})  # 422: not local
    admin.post("/api/v1/policy/entries", {"list": "local_domain", "value": "example.org"})
    k = admin.post("/api/v1/dkim/keys", {"domain": "example.org", "selector": "c1",
                                         "algorithm": "ed25519-sha256"}).json
    admin.post("/api/v1/dkim/keys", {"domain": "example.org", "selector": "c1"})  # 409
    admin.get("/api/v1/dkim/keys")
    admin.get(f"/api/v1/dkim/keys/{k['id']}")
    admin.get("/api/v1/dkim/keys/999999")
    admin.patch(f"/api/v1/dkim/keys/{k['id']}", {"enabled": False})
    admin.delete(f"/api/v1/dkim/keys/{k['id']}")

    admin.post("/api/v1/directory/groups", {"address": "sieve@example.org"}).expect(201)
    sieve_calls(admin, u["id"], "sieve@example.org")
    apply_quarantine_calls(admin, u["id"], "sieve@example.org")

    ulla = Api(d.http_port)
    ulla.login("ulla", "ulla-pass-1")
    ulla.get("/api/v1/users")
    ulla.get(f"/api/v1/users/{me}")
    ulla.get("/api/v1/messages")
    # Score thresholds: the overrides (administrators) and the caller's own.
    admin.get("/api/v1/score/thresholds")
    admin.put("/api/v1/score/thresholds/domain/example.org", {"tag": 4, "quarantine": 8})
    admin.put("/api/v1/score/thresholds/domain/example.org", {"quarantine": 1})
    admin.put("/api/v1/score/thresholds/user/ulla", {"refuse": 30, "greylist": None})
    admin.put("/api/v1/score/thresholds/user/nobody", {"tag": 1})
    admin.put("/api/v1/score/thresholds/group/staff", {"tag": 1})
    ulla.get("/api/v1/account/score")
    ulla.put("/api/v1/account/score", {"tag": 3, "quarantine": 9})
    ulla.put("/api/v1/account/score", {"refuse": 1})
    ulla.get("/api/v1/score/thresholds")
    admin.delete("/api/v1/score/thresholds/user/ulla")
    admin.delete("/api/v1/score/thresholds/user/ulla")
    ulla.post("/api/v1/tokens", {"name": "x", "scope": "admin"})
    ulla.post("/api/v1/users", {"name": "x"}, csrf=False)
    ulla.put("/api/v1/account/password", {"current_password": "nope-nope", "new_password": "z" * 9})
    ulla.put("/api/v1/account/password", {"current_password": "ulla-pass-1", "new_password": "ulla-pass-2"})
    ulla.delete("/api/v1/session")
    admin.delete(f"/api/v1/users/{u['id']}")
    admin.get("/api/v1/users", raw=b"{}")

    # Greylist: a triplet of each state and an allowed network, as the check writes them.
    con = sqlite3.connect(str(d.db_path), timeout=10)
    with con:
        con.executemany(
            "INSERT INTO greylist_triplet (network, sender, rcpt, first_seen, last_seen,"
            " attempts, passed_at, passes, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [("192.0.2.0/24", "a@example.net", "u@example.org", now, now, 1, 0, 0,
              now + 3600000),
             ("2001:db8::/64", "<>", "v@example.org", now, now, 2, now, 1, now + 86400000)])
        con.execute("INSERT INTO greylist_network (network, passes, first_seen, last_seen,"
                    " expires) VALUES ('198.51.100.0/24', 9, ?, ?, ?)", (now, now, now + 86400000))
    con.close()
    gl = admin.get("/api/v1/greylist?state=waiting&network=192.0.2.9").json["items"]
    admin.get("/api/v1/greylist?limit=1")
    admin.get("/api/v1/greylist?network=example.org")
    admin.get("/api/v1/greylist?state=gone")
    admin.delete(f"/api/v1/greylist/{gl[0]['id']}")
    admin.delete("/api/v1/greylist/999999")
    allowed = admin.get("/api/v1/greylist/allowed").json["items"]
    admin.delete(f"/api/v1/greylist/allowed/{allowed[0]['id']}")
    admin.delete("/api/v1/greylist/allowed/999999")
    admin.delete("/api/v1/greylist", body={"confirm": False})
    admin.delete("/api/v1/greylist", body={"confirm": True})

    # The statistical filter: a message learned, the counts.
    admin.post("/api/v1/learn?class=spam", raw=message(subject="contract learn"),
               content_type="message/rfc822").expect(200)
    admin.post("/api/v1/learn", raw=b"x", content_type="message/rfc822").expect(
        400, field="class")
    admin.post("/api/v1/learn?class=spam", {"x": 1}).expect(415)
    admin.get("/api/v1/bayes").expect(200)

    limited = Api(d.http_port)
    for _ in range(6):
        limited.post("/api/v1/session", {"username": "ulla", "password": "wrong-pass"})

    recorded = list(api_client.RECORDED)
    assert len(recorded) > 50
    seen_ok = set()
    for resp in recorded:
        template = validate(resp)
        if 200 <= resp.status < 300:
            seen_ok.add((resp.method.lower(), template))
    assert any(r.status == 429 for r in recorded)
    not_ok = implemented_routes() - seen_ok
    for area in AREA_ROUTES:
        not_ok -= area_routes(area)
    assert not not_ok, f"routes never answered 2xx in the contract run: {sorted(not_ok)}"


def test_daily_stats_match_contract(admin_api):
    """Verdicts per check and DNSBL results per site per UTC day: dense buckets of the
    days asked for, today last, counts from the daily counters; errors name the field."""
    d, admin = admin_api
    api_client.RECORDED.clear()
    day = int(time.time() * 1000) // 86400000
    con = __import__("sqlite3").connect(str(d.db_path), timeout=10)
    with con:
        con.executemany("INSERT INTO policy_stat (check_name, day, count) VALUES (?, ?, ?)",
                        [("dnsbl", day, 5), ("dnsbl", day - 2, 3), ("greylist", day - 1, 7),
                         ("dnsbl", day - 40, 100)])
        con.executemany("INSERT INTO dnsbl_stat (zone, day, queries, hits, tempfails)"
                        " VALUES (?, ?, ?, ?, ?)",
                        [("zen.example", day, 10, 4, 1), ("bl.example", day - 2, 6, 2, 0),
                         ("zen.example", day - 400, 9, 9, 9)])
    con.close()
    c = admin.get("/api/v1/stats/checks?days=3").expect(200).json
    assert c["time_zone"] == "UTC" and c["bucket_ms"] == 86400000
    assert [b["start"] for b in c["buckets"]] == [(day - 2 + i) * 86400000 for i in range(3)]
    assert [b["counts"] for b in c["buckets"]] == [{"dnsbl": 3}, {"greylist": 7}, {"dnsbl": 5}]
    assert c["totals"] == {"dnsbl": 8, "greylist": 7}
    assert c["from"] == (day - 2) * 86400000 and c["to"] == (day + 1) * 86400000
    assert len(admin.get("/api/v1/stats/checks").expect(200).json["buckets"]) == 30
    z = admin.get("/api/v1/stats/dnsbl?days=3").expect(200).json
    assert z["buckets"][0]["zones"] == {"bl.example": {"queries": 6, "hits": 2, "tempfails": 0}}
    assert z["buckets"][1]["zones"] == {}
    assert z["buckets"][2]["zones"]["zen.example"] == {"queries": 10, "hits": 4, "tempfails": 1}
    assert z["totals"] == {"bl.example": 2, "zen.example": 4}
    admin.get("/api/v1/stats/checks?days=0").expect(422, field="days")
    admin.get("/api/v1/stats/dnsbl?days=367").expect(422, field="days")
    admin.get("/api/v1/stats/dnsbl?bucket=day").expect(422, field="bucket")
    for resp in api_client.RECORDED:
        validate(resp)


def test_self_service_routes_match_contract(admin_api):
    """Personal sender lists and group managers: every route answers 2xx, and every answer
    (errors too) validates against the contract."""
    d, admin = admin_api
    api_client.RECORDED.clear()
    u = admin.post("/api/v1/users", {"name": "sam", "password": "sam-pass-1",
                                     "addresses": ["sam@example.org"]}).expect(201).json
    sam = Api(d.http_port)
    sam.login("sam", "sam-pass-1")
    e = sam.post("/api/v1/account/senders", {"kind": "block", "value": "x@example.net"}).json
    sam.post("/api/v1/account/senders", {"kind": "block", "value": "x@example.net"})
    sam.post("/api/v1/account/senders", {"kind": "allow", "value": "*@example.net"})
    sam.get("/api/v1/account/senders?kind=block")
    sam.get("/api/v1/account/senders?kind=maybe")
    sam.delete(f"/api/v1/account/senders/{e['id']}")
    sam.delete(f"/api/v1/account/senders/{e['id']}")
    sam.get(f"/api/v1/users/{u['id']}/senders")
    a = admin.post(f"/api/v1/users/{u['id']}/senders",
                   {"kind": "allow", "value": "@example.net"}).json
    admin.post(f"/api/v1/users/{u['id']}/senders", {"kind": "allow", "value": "example.net"})
    admin.get(f"/api/v1/users/{u['id']}/senders")
    admin.get("/api/v1/users/999999/senders")
    admin.delete(f"/api/v1/users/{u['id']}/senders/{a['id']}")
    admin.post("/api/v1/directory/groups", {"address": "team@example.org"})
    admin.post("/api/v1/directory/groups/team@example.org/managers", {"user": "sam"})
    admin.post("/api/v1/directory/groups/team@example.org/managers", {"user": "sam"})
    admin.post("/api/v1/directory/groups/team@example.org/managers", {"user": "nobody"})
    admin.post("/api/v1/directory/groups/none@example.org/managers", {"user": "sam"})
    admin.get("/api/v1/directory/groups/team@example.org/managers")
    admin.get("/api/v1/directory?kind=group")
    admin.delete("/api/v1/directory/groups/team@example.org/managers/sam")
    admin.delete("/api/v1/directory/groups/team@example.org/managers/sam")
    seen_ok = set()
    for resp in list(api_client.RECORDED):
        template = validate(resp)
        if 200 <= resp.status < 300:
            seen_ok.add((resp.method.lower(), template))
    mine = area_routes("self_service")
    assert len(mine) == 9, mine
    assert not mine - seen_ok, f"never answered 2xx: {sorted(mine - seen_ok)}"
    assert any(r.status == 409 for r in api_client.RECORDED)
    assert any(r.status == 422 for r in api_client.RECORDED)


def test_timeline_routes_match_contract(admin_api):
    """Timelines (docs/timeline.md): both routes answer 2xx for a real message, and every
    answer (errors too) validates against the contract."""
    d, admin = admin_api
    api_client.RECORDED.clear()
    c = d.raw()
    try:
        c.ehlo()
        reply = c.transaction("s@example.net", ["r@example.org"], message(subject="contract"))
    finally:
        c.close()
    assert reply.code in (250, 550, 554), reply
    row = d.log_rows("1")[0]
    admin.get(f"/api/v1/messages/{row['id']}/timeline").expect(200)
    admin.get("/api/v1/messages/999999/timeline").expect(404)
    if row["qid"]:
        admin.get(f"/api/v1/timeline?qid={row['qid']}").expect(200)
    else:
        insert_log_rows(d.db_path, [log_row(1, int(time.time() * 1000), qid="QCONTRACT1")])
        admin.get("/api/v1/timeline?qid=QCONTRACT1").expect(200)
    admin.get("/api/v1/timeline").expect(422, field="qid")
    admin.get("/api/v1/timeline?qid=a&message_id=b").expect(422, field="message_id")
    admin.get("/api/v1/timeline?message_id=none%40example.net").expect(404)
    seen_ok = set()
    for resp in list(api_client.RECORDED):
        template = validate(resp)
        if 200 <= resp.status < 300:
            seen_ok.add((resp.method.lower(), template))
    mine = {r for r in implemented_routes() if "timeline" in r[1]}
    assert len(mine) == 2, mine
    assert not mine - seen_ok, f"never answered 2xx: {sorted(mine - seen_ok)}"


def test_digest_routes_match_contract(admin_api):
    """Digests (docs/digest.md): every route answers 2xx, and every JSON answer (errors too)
    validates against the contract; the public link pages answer HTML."""
    import http.client
    import re as _re
    d, admin = admin_api
    api_client.RECORDED.clear()
    u = admin.post("/api/v1/users", {"name": "dora", "password": "dora-pass-1",
                                     "addresses": ["dora@example.org"]}).expect(201).json
    dora = Api(d.http_port)
    dora.login("dora", "dora-pass-1")
    dora.get("/api/v1/account/digest").expect(200)
    dora.put("/api/v1/account/digest", {"interval": "weekly"}).expect(200)
    dora.put("/api/v1/account/digest", {"interval": "yearly"}).expect(422)
    admin.patch(f"/api/v1/users/{u['id']}", {"digest_interval": "hourly"}).expect(200)
    admin.patch(f"/api/v1/users/{u['id']}", {"digest_interval": "often"}).expect(422)
    t = admin.get("/api/v1/quarantine/digest/template").expect(200).json
    admin.put("/api/v1/quarantine/digest/template", t).expect(200)
    admin.put("/api/v1/quarantine/digest/template", dict(t, text="{{nope}}")).expect(422)
    admin.post("/api/v1/quarantine/digest/preview", {"user": "dora"}).expect(200)
    admin.post("/api/v1/quarantine/digest/preview", {"user": "ghost"}).expect(422)
    sent = admin.post("/api/v1/quarantine/digest/send", {"user": "dora"}).expect(200).json
    admin.post("/api/v1/quarantine/digest/send", {"user": "admin"}).expect(422)
    dora.get("/api/v1/quarantine/digest/template").expect(403)
    seen_ok = set()
    for resp in list(api_client.RECORDED):
        template = validate(resp)
        if 200 <= resp.status < 300:
            seen_ok.add((resp.method.lower(), template))
    # A real link for one of dora's items, from a digest sent now: GET and POST answer 200.
    c = d.raw()
    try:
        c.ehlo()
        c.transaction("s@example.net", ["dora@example.org"], message(subject="contract"))
    finally:
        c.close()
    now = int(time.time() * 1000)
    import sqlite3
    con = sqlite3.connect(str(d.db_path), timeout=10)
    try:
        con.execute("INSERT INTO quarantine (qid, rcpt, kind, reason, sender, client_addr, size,"
                    " created_at, expires_at) VALUES ('0123456789abcdef', 'dora@example.org',"
                    " 'spam', 'rule 1 x', 's@example.net', '127.0.0.1', 10, ?, ?)",
                    (now, now + 86400000))
        con.commit()
    finally:
        con.close()
    sent = admin.post("/api/v1/quarantine/digest/send", {"user": "dora"}).expect(200).json
    assert sent["items"] >= 1
    qfile = d.data_dir / "spool" / "queue" / sent["qid"]
    raw = qfile.read_bytes()
    import email
    import email.policy
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text = msg.get_body(("plain",)).get_content()
    import base64
    tokens = _re.findall(r"/q/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", text)

    def action(tok):
        p = tok.split(".")[0]
        return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["a"]
    # The delete link: the inserted item has no stored message to release.
    token = [t for t in tokens if action(t) == "delete"][0]
    for method in ("GET", "POST"):
        conn = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=10)
        try:
            conn.request(method, "/q/" + token)
            r = conn.getresponse()
            body = r.read()
            assert r.status == 200, (method, r.status, body[:300])
            assert r.getheader("Content-Type").startswith("text/html")
            op = find_operation(method, "/q/" + token)[1]
            assert "200" in op["responses"]
            seen_ok.add((method.lower(), "/q/{token}"))
        finally:
            conn.close()
    mine = area_routes("digest")
    assert len(mine) == 8, mine
    assert not mine - seen_ok, f"never answered 2xx: {sorted(mine - seen_ok)}"


def test_mailbox_rules_routes_match_contract(admin_api):
    """Mailbox rules (docs/mailbox-rules.md): every route under the three bases answers 2xx,
    and every JSON answer (errors too) validates against the contract."""
    d, admin = admin_api
    api_client.RECORDED.clear()
    u = admin.post("/api/v1/users", {"name": "mia", "password": "mia-pass-1",
                                     "addresses": ["mia@example.org"]}).expect(201).json
    group = "crew@example.org"
    admin.post("/api/v1/directory/groups", {"address": group}).expect(201)
    mia = Api(d.http_port)
    mia.login("mia", "mia-pass-1")
    rule = {"name": "reports", "comment": "noon",
            "when": {"field": "header", "header": "Subject", "op": "contains", "value": "report"},
            "actions": [{"type": "move", "folder": "Reports"}, {"type": "tag_subject",
                                                                "prefix": "[r] "}]}
    msg = "From: a@example.net\r\nTo: mia@example.org\r\nSubject: noon report\r\n\r\nhi\r\n"
    for who, base in ((mia, "/api/v1/account/rules"), (admin, f"/api/v1/users/{u['id']}/rules"),
                      (admin, f"/api/v1/directory/groups/{group}/rules")):
        a = who.post(base, rule).expect(201).json
        b = who.post(base, dict(rule, name="first", position=0)).expect(201).json
        who.get(base).expect(200)
        who.get(f"{base}?q=report&enabled=true&limit=1").expect(200)
        who.get(f"{base}/{a['id']}").expect(200)
        who.put(f"{base}/{a['id']}", dict(rule, name="renamed")).expect(200)
        who.patch(f"{base}/{a['id']}", {"enabled": False}).expect(200)
        c = who.post(f"{base}/{a['id']}/duplicate").expect(201).json
        order = [r["id"] for r in who.get(base).expect(200).json["items"]][::-1]
        who.put(f"{base}/order", {"ids": order}).expect(200)
        who.post(f"{base}/bulk", {"ids": [a["id"], c["id"]], "op": "enable"}).expect(200)
        exported = who.get(f"{base}/export").expect(200).json
        who.post(f"{base}/import", {"rules": exported, "mode": "append"}).expect(200)
        who.post(f"{base}/import", {"rules": exported}).expect(200)
        who.post(f"{base}/test", {"message": msg}).expect(200)
        who.post(f"{base}/test", {"message_log_id": 999999}).expect(404, field="message_log_id")
        ids = [r["id"] for r in who.get(base).expect(200).json["items"]]
        who.delete(f"{base}/{ids[0]}").expect(204)
        who.post(f"{base}/bulk", {"ids": ids[1:2], "op": "delete"}).expect(200)
        # errors name the field
        who.post(base, dict(rule, actions=[{"type": "move", "folder": "../x"}])).expect(
            422, field="rule.actions[0].folder")
        who.put(f"{base}/order", {"ids": [1, 1]}).expect(422, field="ids")
        who.get(f"{base}/999999").expect(404)
    sieve_calls(admin, u["id"], group)
    apply_quarantine_calls(admin, u["id"], group)
    mia.get(f"/api/v1/users/{u['id']}/rules").expect(404)
    seen_ok = set()
    for resp in list(api_client.RECORDED):
        template = validate(resp)
        if 200 <= resp.status < 300:
            seen_ok.add((resp.method.lower(), template))
    mine = area_routes("mailbox")
    assert len(mine) == 3 * 15, sorted(mine)
    assert not mine - seen_ok, f"never answered 2xx: {sorted(mine - seen_ok)}"
