#!/usr/bin/env python3
"""Mailbox rules side by side: Moat's evaluation and Dovecot Pigeonhole's sieve-test on the
same rules and the same messages (bench/README.md, "sieve_side_by_side").

    bench/sieve_side_by_side.py [BUILD_DIR]          (default: build; needs moatd and
                                                      sieve_moat_eval built there)

1. Two mailbox sets of 200 and 10,000 rules are generated (deterministic; the shapes of
   mailbox_bench, restricted to what Sieve expresses: envelope sender `is`, Subject
   `contains`, List-Id `ends_with`, Subject `contains` AND To/Cc `contains`, body
   `contains`, From `starts_with`, about one in twenty a Subject regular expression; actions move
   (fileinto + stop), copy (fileinto :copy), stop).  One rule in eight (200) or in fifty
   (10,000) takes its value from a message of the sample, so that about half the messages
   are filed, often by several rules at once, and the order of the rules decides.
2. A moatd on loopback with a throw-away data directory gets each set for one user through
   POST /api/v1/users/{id}/rules/import (as admin); the script reads back GET .../export
   (the stored rules) and GET .../sieve, and compiles the Sieve text with sievec.
3. Messages: the fixed sample of bench/send_files.py (200 of 4-6 KB and 20 of 40-60 KB of
   the SpamAssassin corpus, scripts/corpus.sh; mbox line cut, CRLF line ends).  Envelope:
   the Return-Path (else From) address of the message as sender, ann@example.org as recipient, for both.
4. Pigeonhole: sieve-test on each message with the compiled binary (the .svbin next to the
   script is newer, so sieve-test loads it and does not compile), REPS times, and the same
   with a compiled script of one `keep;`.  Per message: median wall and CPU (user + system of
   the child) minus the same for the empty script, i.e. loading the binary + running it,
   without process start and message parsing that any script pays.
5. Moat: sieve_moat_eval (moat_core: rules_def_parse_kind + rules_compile, then per message
   mime_parse + rules_eval, thread CPU time, mean of ITER runs), and the dry run API
   (POST .../test) for every message of the 200-rule set and DRYRUN_10K of the 10,000.
6. Every message's folders (the folder it lands in, or INBOX, plus copy folders) must be the
   same in sieve-test, sieve_moat_eval and the dry run; each difference is printed with the
   rules involved.  Exit status 1 on any difference.

Knobs: REPS=3, ITER=200, DRYRUN_10K=20, KEEP=1 (keep the work directory), RUN_TIMEOUT=1800.
"""
import email
import email.policy
import json
import os
import pathlib
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from send_files import pick  # noqa: E402  the same fixed sample as bench/rules_relay.sh
from api_client import Api  # noqa: E402

RCPT = "ann@example.org"
ADMIN_PASSWORD = "bench-admin-password-1"
REPS = int(os.environ.get("REPS", "3"))
ITER = int(os.environ.get("ITER", "200"))
DRYRUN_10K = int(os.environ.get("DRYRUN_10K", "20"))
RUN_TIMEOUT = int(os.environ.get("RUN_TIMEOUT", "1800"))
# editheader as docs/mailbox-rules.md says; a 10,000-rule export (1.3 MB) is over Pigeonhole's
# default script size limit of 1 MiB
SIEVE_EXT = ["-x", "+editheader", "-o", "plugin/sieve_max_script_size=64M"]
AS_NOBODY = ["-o", "mail_uid=nobody", "-o", "mail_gid=nogroup"]
WORD = re.compile(r"^[A-Za-z][A-Za-z0-9'-]{2,}$")


def die(msg):
    print(f"sieve_side_by_side: {msg}", file=sys.stderr)
    sys.exit(2)


# ---- messages ------------------------------------------------------------------------------
def load_sample(work):
    corpus = subprocess.run([str(ROOT / "scripts" / "corpus.sh")], capture_output=True,
                            text=True, check=True).stdout.strip()
    paths = pick(corpus, 4000, 6000, 200) + pick(corpus, 40000, 60000, 20)
    mdir = work / "msg"
    mdir.mkdir()
    msgs = []
    for i, p in enumerate(paths):
        data = pathlib.Path(p).read_bytes()
        if data.startswith(b"From "):
            data = data[data.find(b"\n") + 1:]
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        out = mdir / f"{i:03d}.eml"
        out.write_bytes(data)
        m = email.message_from_bytes(data, policy=email.policy.compat32)
        # the envelope sender: Return-Path, as the dry run API takes it, else From
        sender = email.utils.parseaddr(str(m.get("Return-Path") or m.get("From") or ""))[1]
        if not re.match(r"^[^@\s<>\"]+@[A-Za-z0-9.-]+$", sender):
            sender = "bench@example.net"
        msgs.append({"i": i, "src": os.path.relpath(p, corpus), "path": str(out),
                     "raw": data, "msg": m, "sender": sender, "size": len(data)})
    return msgs


def plain_text(m):
    for part in m.walk():
        if part.get_content_type() == "text/plain" and not part.is_multipart():
            try:
                return part.get_payload(decode=True).decode("ascii", "replace")
            except Exception:  # noqa: BLE001  a broken part offers no phrase
                return ""
    return ""


def words(s):
    return [w for w in re.split(r"\s+", s or "") if WORD.match(w)]


def real_value(rng, msgs, shape):
    """A value taken from a message of the sample, for a rule of that shape; None if the
    drawn message has none."""
    m = rng.choice(msgs)
    h = m["msg"]
    if shape == "sender":
        return m["sender"] if m["sender"] != "bench@example.net" else None
    if shape == "subject":
        w = words(str(h.get("Subject", "")))
        if len(w) < 2:
            return None
        k = rng.randrange(len(w) - 1)
        return f"{w[k]} {w[k + 1]}"
    if shape == "list":
        v = str(h.get("List-Id", "")).strip()
        mm = re.search(r"<([^<>\s]+)>", v)
        return mm.group(1) + ">" if mm else None
    if shape == "to_cc":
        a = email.utils.parseaddr(str(h.get("To", "")))[1]
        w = words(str(h.get("Subject", "")))
        if "@" not in a or not w:
            return None
        return (w[0], a.split("@", 1)[1].lower())
    if shape == "body":
        # three words in a row, as they stand in one line of the text
        runs = []
        for ln in plain_text(h).splitlines():
            t = ln.split()
            runs += [" ".join(t[k:k + 3]) for k in range(len(t) - 2)
                     if all(WORD.match(x) for x in t[k:k + 3])][:1]
        return rng.choice(runs) if runs else None
    if shape == "from":
        v = str(h.get("From", "")).strip()
        return v[:8] if len(v) >= 8 and v.isascii() else None
    return None


def leaf(field, op, value, header=None):
    d = {"field": field, "op": op, "value": value}
    if header:
        d["header"] = header
    return d


def make_rules(n, msgs, real_every, seed):
    rng = random.Random(seed)
    shapes = ["sender", "subject", "list", "to_cc", "body", "from"]
    rules = []
    for i in range(n):
        shape = shapes[i % len(shapes)]
        regex = rng.random() < 0.05
        real = None
        if i % real_every == real_every // 2:
            real = real_value(rng, msgs, "subject" if regex else shape)
        if regex:  # a regular expression that reads the same in POSIX ERE and PCRE2
            if real is not None:
                a, b = real.split(" ", 1)
                val = f"{re.escape(a)} +{re.escape(b)}"
            else:
                val = f"^(re|fwd?): +voyage log {i}[a-z]+$"
            when = leaf("header", "matches", val, "Subject")
        elif shape == "sender":
            when = leaf("sender", "is", real or f"ship{i}@fleet{i % 7}.example")
        elif shape == "subject":
            when = leaf("header", "contains", real or f"voyage report {i}", "Subject")
        elif shape == "list":
            when = leaf("header", "ends_with", real or f"list{i}.fleet.example>", "List-Id")
        elif shape == "to_cc":
            w, dom = real or (f"cargo-{i}", "fleet.example")
            when = {"all": [leaf("header", "contains", w, "Subject"),
                            leaf("to_cc", "contains", dom)]}
        elif shape == "body":
            when = leaf("body", "contains", real or f"berth {i} pilot on board")
        else:
            when = leaf("header", "starts_with", real or f"Harbour {i} <", "From")
        acts = []
        if i % 25 == 0:
            acts.append({"type": "copy", "folder": "Archive"})
        if i % 50 == 7:
            acts.append({"type": "stop"})
        else:
            acts.append({"type": "move", "folder": f"Ships/Ship{i % 97}/Kind{i % 13}"})
        rules.append({"name": f"rule {i}{' (real)' if real else ''}", "enabled": True,
                      "when": when, "actions": acts})
    return rules


# ---- moatd ---------------------------------------------------------------------------------
class Moatd:
    def __init__(self, binary, work):
        self.dir = work / "moatd"
        self.dir.mkdir()
        self.log = self.dir / "moatd.log"
        conf = self.dir / "moatd.conf"
        conf.write_text("\n".join([
            f"data_dir = {self.dir / 'data'}", "hostname = bench.moat.test",
            f"log = {self.log}", "log_level = info", "smtp_listen = 127.0.0.1:0",
            "http_listen = 127.0.0.1:0", "delivery = no", "shutdown_timeout = 3s", ""]))
        subprocess.run([binary, "policy", "-c", str(conf), "add", "local_domain", "example.org"],
                       check=True, capture_output=True)
        env = dict(os.environ, MOAT_ADMIN_PASSWORD=ADMIN_PASSWORD)
        self.proc = subprocess.Popen([binary, "-c", str(conf)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = self.log.read_text() if self.log.exists() else ""
            mm = re.search(r" ready .*\bhttp=\S*:(\d+)", text)
            if mm:
                self.port = int(mm.group(1))
                return
            if self.proc.poll() is not None:
                die(f"moatd exited {self.proc.returncode}: {text[-2000:]}")
            time.sleep(0.05)
        self.stop()
        die("moatd not ready within 30 s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def expect(r, status):
    if r.status != status:
        die(f"{r.method} {r.path}: {r.status} {r.body[:300]!r}")
    return r


# ---- Pigeonhole ----------------------------------------------------------------------------
def sievec(script):
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    cc = subprocess.run(["sievec", *SIEVE_EXT, str(script)], capture_output=True, text=True,
                        timeout=600)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cc.returncode != 0:
        die(f"sievec {script}: {cc.stdout}{cc.stderr}")
    os.chmod(script.with_suffix(".svbin"), 0o644)
    return wall * 1e3, (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) * 1e3


def sieve_test(script, m):
    """(folders, wall s, CPU s) of one sieve-test run."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(["sieve-test", *AS_NOBODY, *SIEVE_EXT, "-r", RCPT, "-a", RCPT,
                          "-f", m["sender"], str(script), m["path"]],
                         capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        die(f"sieve-test {script} {m['path']}: {out.stdout}{out.stderr}")
    if "compil" in out.stderr.lower():
        die(f"sieve-test compiled {script} instead of loading its binary: {out.stderr}")
    got = set()
    for line in out.stdout.splitlines():
        mm = re.match(r"\s*\* store message in folder: (.*)$", line)
        if mm:
            got.add(mm.group(1))
        elif re.match(r"\s*\* (redirect|reject|discard)", line):
            got.add(line.strip())
    return got, wall, ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime


def run_sieve(script, empty, msgs):
    res = {}
    for m in msgs:
        walls, cpus, ewalls, ecpus, got = [], [], [], [], None
        for _ in range(REPS):
            _, w, c = sieve_test(empty, m)
            ewalls.append(w)
            ecpus.append(c)
            got, w, c = sieve_test(script, m)
            walls.append(w)
            cpus.append(c)
        res[m["i"]] = {"folders": got,
                       "wall_us": (statistics.median(walls) - statistics.median(ewalls)) * 1e6,
                       "cpu_us": (statistics.median(cpus) - statistics.median(ecpus)) * 1e6,
                       "empty_wall_us": statistics.median(ewalls) * 1e6}
    return res


# ---- Moat ----------------------------------------------------------------------------------
def run_moat_eval(tool, rules_json, listfile):
    out = subprocess.run([tool, str(rules_json), str(listfile), RCPT, str(ITER)],
                         capture_output=True, text=True, timeout=RUN_TIMEOUT)
    if out.returncode != 0:
        die(f"sieve_moat_eval: {out.stderr}")
    lines = out.stdout.splitlines()
    head = dict(kv.split("=") for kv in lines[0][2:].split())
    res = {}
    for ln in lines[1:]:
        path, folder, copies, mime_us, eval_us, rule = ln.split("\t")
        i = int(pathlib.Path(path).stem)
        f = {folder} | (set(copies.split(",")) if copies != "-" else set())
        res[i] = {"folders": f, "mime_us": float(mime_us), "eval_us": float(eval_us),
                  "rule": int(rule)}
    return head, res


def dry_run(api, base, m):
    o = expect(api.post(f"{base}/test", {"message": m["raw"].decode("utf-8", "replace"),
                                         "address": RCPT}), 200).json
    oc = o["outcome"]
    got = {oc["folder"] or "INBOX"} if oc["action"] not in ("forward", "redirect", "discard",
                                                              "refuse") else {oc["action"]}
    got |= set(oc.get("copy_folders") or [])
    matched = [r.get("name") for r in o.get("rules", []) if r.get("state") == "matched"]
    return got, matched


def explain(rules, m):
    """Which rules could match the message, by a crude look at the values (for the report)."""
    raw = m["raw"].decode("utf-8", "replace").lower()
    out = []
    for r in rules:
        leaves = r["when"].get("all", [r["when"]])
        vals = [lf["value"].lower() for lf in leaves]
        if all(v.rstrip(">").split(" +")[0].replace("\\", "") in raw for v in vals):
            out.append(f"{r['name']}: {json.dumps(r['when'])} -> {json.dumps(r['actions'])}")
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def summary(label, xs):
    return (f"{label}: mean {statistics.mean(xs):9.1f}  p50 {pct(xs, 50):9.1f}  "
            f"p90 {pct(xs, 90):9.1f}  max {max(xs):9.1f}")


def main():
    build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "build").resolve()
    moatd_bin, tool = build / "moatd", build / "sieve_moat_eval"
    for p in (moatd_bin, tool):
        if not os.access(p, os.X_OK):
            die(f"{p} not built (cmake --build {build} --target moatd sieve_moat_eval)")
    for t in ("sievec", "sieve-test"):
        if shutil.which(t) is None:
            die(f"{t} not found (Debian package dovecot-sieve)")
    signal.signal(signal.SIGALRM, lambda *_: die(f"over RUN_TIMEOUT={RUN_TIMEOUT} s"))
    signal.alarm(RUN_TIMEOUT)
    # sieve-test runs as nobody: the directory must be readable by everyone
    work = pathlib.Path(tempfile.mkdtemp(prefix="moat-sieve-bench-", dir="/tmp"))
    os.chmod(work, 0o755)
    moatd = None
    mismatches = 0
    try:
        msgs = load_sample(work)
        print(f"messages: {len(msgs)} ({sum(m['size'] for m in msgs)} octets), "
              f"REPS={REPS} ITER={ITER}; {time.strftime('%Y-%m-%d %H:%M:%S')}, "
              f"nproc {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
        listfile = work / "messages.tsv"
        listfile.write_text("".join(f"{m['path']}\t{m['sender']}\n" for m in msgs))
        empty = work / "empty.sieve"
        empty.write_text("keep;\n")
        sievec(empty)
        moatd = Moatd(str(moatd_bin), work)
        admin = Api(moatd.port)
        admin.login("admin", ADMIN_PASSWORD)
        uid = expect(admin.post("/api/v1/users", {"name": "ann", "password": "password-xxxx",
                                                  "addresses": [RCPT]}), 201).json["id"]
        base = f"/api/v1/users/{uid}/rules"
        for n, real_every in ((200, 8), (10000, 50)):
            rules = make_rules(n, msgs, real_every, seed=n)
            t0 = time.perf_counter()
            expect(admin.post(f"{base}/import", {"rules": rules, "mode": "replace"}), 200)
            import_ms = (time.perf_counter() - t0) * 1e3
            stored = expect(admin.get(f"{base}/export"), 200).json
            assert [r["name"] for r in stored] == [r["name"] for r in rules]
            (work / f"rules-{n}.json").write_text(json.dumps(stored))
            text = expect(admin.get(f"{base}/sieve"), 200).body.decode()
            if "# not exported" in text:
                die(f"{n} rules: export left rules out: "
                    f"{[ln for ln in text.splitlines() if ln.startswith('# not exported')]}")
            script = work / f"rules-{n}.sieve"
            script.write_text(text)
            c_wall, c_cpu = sievec(script)
            head, moat = run_moat_eval(str(tool), work / f"rules-{n}.json", listfile)
            sieve = run_sieve(script, empty, msgs)
            ndry = len(msgs) if n <= 200 else min(DRYRUN_10K, len(msgs))
            dry = {}
            dry_ms = []
            for m in msgs[:ndry]:
                t0 = time.perf_counter()
                dry[m["i"]] = dry_run(admin, base, m)
                dry_ms.append((time.perf_counter() - t0) * 1e3)
            print(f"\n== {n} rules ({len(text)} octets of Sieve, "
                  f"{sum(1 for r in rules if '(real)' in r['name'])} rules with a value "
                  f"taken from the sample)")
            print(f"compile: moat {head['compile_ms']} ms CPU ({head['memory_mb']} MB), "
                  f"import API {import_ms:.0f} ms wall; sievec {c_wall:.0f} ms wall, "
                  f"{c_cpu:.0f} ms CPU")
            filed = sum(1 for i in moat if moat[i]["folders"] != {"INBOX"})
            print(f"messages filed away from the inbox: {filed} of {len(msgs)}")
            kinds = {}
            for i in moat:
                k = moat[i]["rule"]
                if k >= 0:
                    lf = rules[k]["when"].get("all", [rules[k]["when"]])[0]
                    kk = "and to_cc" if "all" in rules[k]["when"] else \
                        f"{lf.get('header', lf['field'])} {lf['op']}"
                    kinds[kk] = kinds.get(kk, 0) + 1
            print(f"deciding rule of a message, by test: {dict(sorted(kinds.items()))}")
            for kind, sel in (("5 KB", [m for m in msgs if m["size"] < 10000]),
                              ("50 KB", [m for m in msgs if m["size"] >= 10000])):
                ids = [m["i"] for m in sel]
                print(f"  {kind} ({len(ids)} messages), microseconds per message:")
                print("    " + summary("moat eval CPU         ", [moat[i]["eval_us"] for i in ids]))
                print("    " + summary("moat MIME+eval CPU    ",
                                       [moat[i]["eval_us"] + moat[i]["mime_us"] for i in ids]))
                print("    " + summary("sieve-test CPU - empty", [sieve[i]["cpu_us"] for i in ids]))
                print("    " + summary("sieve-test wall - empty",
                                       [sieve[i]["wall_us"] for i in ids]))
                print("    " + summary("sieve-test wall, empty script",
                                       [sieve[i]["empty_wall_us"] for i in ids]))
            print("  " + summary(f"dry run API wall ms ({ndry} messages)", dry_ms))
            dry_diff = 0
            for m in msgs:
                i = m["i"]
                a, b = moat[i]["folders"], sieve[i]["folders"]
                if i in dry and dry[i][0] != a:
                    # the dry run is the API a user clicks; report it, but the folders of
                    # delivery are those of sieve_moat_eval (the content worker's calls)
                    dry_diff += 1
                    k = moat[i]["rule"]
                    why = json.dumps(rules[k]["when"]) if k >= 0 else "no rule"
                    print(f"  DRY RUN DIFFERS {n} rules, message {i:03d} ({m['src']}): moat "
                          f"{sorted(a)} by {why}, dry run {sorted(dry[i][0])}, dry run "
                          f"matched {dry[i][1][:4]}")
                if a == b:
                    continue
                mismatches += 1
                print(f"  MISMATCH {n} rules, message {i:03d} ({m['src']}): moat {sorted(a)}, "
                      f"sieve-test {sorted(b)}")
                for line in explain(rules, m)[:6]:
                    print(f"    candidate {line}")
            print(f"  same folders in moat and sieve-test: {len(msgs) - sum(1 for m in msgs if moat[m['i']]['folders'] != sieve[m['i']]['folders'])} of {len(msgs)}; dry run differs from moat on {dry_diff} of {ndry}")
        print(f"\nmismatches: {mismatches}")
    finally:
        if moatd is not None:
            moatd.stop()
        if os.environ.get("KEEP") == "1":
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
