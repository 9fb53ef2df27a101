#!/usr/bin/python3
"""Statistical filter evaluation over the SpamAssassin public corpus: moatd
(`moatd learn` + `moatd classify`), bogofilter and SpamAssassin's Bayes, trained on
the same seeded, stratified half of the corpus and tested on the other half, in one
run.  Prints spam caught at 0.1% and 1% ham loss, 1-AUC, CPU per classified message,
learning time and store size.  bench/bayes_eval.sh runs it; bench/README.md has the
figures.

The copies every filter sees are the same: the mbox "From " line removed and the
header fields that carry the corpus's label removed (LEAK_HEADERS, and Received
fields written by the corpus owner's own machines, COLLECTOR_HOSTS)."""

import argparse
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

CORPUS_DIRS = {"ham": ("easy-ham-1", "easy-ham-2", "hard-ham-1"), "spam": ("spam-1", "spam-2")}
# Header fields written by the filter that sorted the corpus, or by the mailbox it was
# collected from (spam traps, the owner's addresses, delivery and client flags).
LEAK_HEADERS = re.compile(
    rb"^(x-spam-[a-z0-9-]*|delivered-to|x-original-to|envelope-to|x-envelope-to|"
    rb"x-delivered-to|x-keywords|x-uid|status|x-status|delivery-date|x-original-date|"
    rb"x-bogosity|x-dspam-[a-z-]*)$", re.I)
# Received fields of the collector's own hosts differ between the corpus's ham and
# spam collections (a label of the collection, not of the message).
COLLECTOR_HOSTS = re.compile(rb"spamassassin\.taint\.org|netnoteinc\.com|jmason\.org|"
                             rb"localhost|127\.0\.0\.1|fetchmail", re.I)


def clean(raw):
    if raw.startswith(b"From "):
        raw = raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    sep = raw.find(b"\n\n")
    head, body = (raw, b"") if sep < 0 else (raw[:sep + 1], raw[sep + 1:])
    fields, cur = [], []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and cur:
            cur.append(line)
        else:
            if cur:
                fields.append(b"\n".join(cur))
            cur = [line] if line else []
    if cur:
        fields.append(b"\n".join(cur))
    kept = []
    for f in fields:
        name = f.split(b":", 1)[0].strip()
        if LEAK_HEADERS.match(name):
            continue
        if name.lower() == b"received" and COLLECTOR_HOSTS.search(f):
            continue
        kept.append(f)
    return b"\n".join(kept) + b"\n" + body


def split(corpus, seed, train_frac, work):
    rnd = random.Random(seed)
    sets = {}
    for cls, dirs in CORPUS_DIRS.items():
        files = sorted(p for d in dirs for p in (corpus / d).glob("*.txt"))
        rnd.shuffle(files)
        cut = int(len(files) * train_frac)
        sets[("train", cls)] = files[:cut]
        sets[("test", cls)] = files[cut:]
    for (part, cls), files in sets.items():
        d = work / part / cls
        d.mkdir(parents=True)
        for i, f in enumerate(files):
            (d / f"{i:05d}.eml").write_bytes(clean(f.read_bytes()))
    return {k: sorted((work / k[0] / k[1]).iterdir()) for k in sets}


def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(cmd, ok=(0,), **kw):
    t0, c0 = time.monotonic(), child_cpu()
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode not in ok:
        sys.exit(f"bayes_eval: {' '.join(map(str, cmd[:4]))} ...: rc={p.returncode}\n"
                 f"{p.stderr[-3000:]}")
    return p, time.monotonic() - t0, child_cpu() - c0


def dir_size(d):
    return sum(f.stat().st_size for f in Path(d).rglob("*") if f.is_file())


def metrics(ham, spam):
    """ham, spam: lists of sortable scores (higher = spammier)."""
    out = {}
    hs = sorted(ham, reverse=True)
    for loss in (0.001, 0.01):
        allowed = int(loss * len(hs))
        thr = hs[allowed] if allowed < len(hs) else hs[-1]
        # strictly above the (allowed+1)-th highest ham: ties go against the filter
        out[loss] = sum(1 for s in spam if s > thr) / len(spam)
    # AUC: P(spam > ham) + P(tie)/2, by ranks
    allv = sorted([(s, 1) for s in spam] + [(h, 0) for h in ham])
    rank_sum, i = 0.0, 0
    while i < len(allv):
        j = i
        while j < len(allv) and allv[j][0] == allv[i][0]:
            j += 1
        avg = (i + j + 1) / 2.0
        rank_sum += avg * sum(1 for k in range(i, j) if allv[k][1] == 1)
        i = j
    ns, nh = len(spam), len(ham)
    auc = (rank_sum - ns * (ns + 1) / 2.0) / (ns * nh)
    out["1-auc"] = 1.0 - auc
    return out


def eval_moatd(args, sets, work, results):
    moatd = args.moatd
    data = work / "moatd"
    learn_cpu = 0.0
    for cls in ("spam", "ham"):
        p, wall, cpu = run([moatd, "learn", "--data-dir", data, f"--{cls}", work / "train" / cls])
        learn_cpu += cpu
        print(f"  moatd learn --{cls}: {p.stdout.strip().splitlines()[-1]}", file=sys.stderr)
    # 1,000 messages into a fresh store (500 of each class), as the target states it
    d1k = work / "moatd-1k"
    files = [str(f) for f in sets[("train", "spam")][:500]]
    _, _, c1 = run([moatd, "learn", "--data-dir", d1k, "--spam"] + files)
    files = [str(f) for f in sets[("train", "ham")][:500]]
    _, _, c2 = run([moatd, "learn", "--data-dir", d1k, "--ham"] + files)
    subprocess.run(["sqlite3", data / "moat.db", "PRAGMA wal_checkpoint(TRUNCATE);"],
                   capture_output=True)
    size = dir_size(data)
    ntrain = len(sets[("train", "spam")]) + len(sets[("train", "ham")])
    for comb in args.combiners:
        scores = {}
        per_msg = None
        for cls in ("ham", "spam"):
            p, _, _ = run([moatd, "classify", "--data-dir", data, "--top", "0", "--combiner",
                           comb, work / "test" / cls])
            vals = []
            for line in p.stdout.splitlines():
                f = line.split("\t")
                # the probability, then the evidence where it saturates
                vals.append((float(f[1]), float(f[3])))
            scores[cls] = vals
            m = re.search(r"per message ([0-9.]+) us CPU tokenize\+score, ([0-9.]+) us", p.stderr)
            if m:
                per_msg = (per_msg or []) + [(float(m.group(1)), float(m.group(2)))]
        name = f"moatd ({comb})"
        res = metrics(scores["ham"], scores["spam"])
        res["cpu_us"] = sum(x[0] for x in per_msg) / len(per_msg)
        res["cpu_note"] = f"+{sum(x[1] for x in per_msg) / len(per_msg):.0f} us message walk"
        res["learn_1k_s"] = c1 + c2
        res["learn_all"] = f"{learn_cpu:.1f} s CPU for {ntrain}"
        res["size"] = size
        results[name] = res


def eval_bogofilter(args, sets, work, results):
    d = work / "bogofilter"
    d.mkdir()
    learn_cpu = 0.0
    for cls, flag in (("spam", "-s"), ("ham", "-n")):
        _, _, cpu = run(["bogofilter", "-C", "-d", d, flag, "-B", work / "train" / cls])
        learn_cpu += cpu
    d1k = work / "bogofilter-1k"
    d1k.mkdir()
    _, _, c1 = run(["bogofilter", "-C", "-d", d1k, "-s", "-B"] +
                   [str(f) for f in sets[("train", "spam")][:500]])
    _, _, c2 = run(["bogofilter", "-C", "-d", d1k, "-n", "-B"] +
                   [str(f) for f in sets[("train", "ham")][:500]])
    scores, cpu_total, n = {}, 0.0, 0
    for cls in ("ham", "spam"):
        files = [str(f) for f in sets[("test", cls)]]
        # exit status: that of the last message (0 spam, 1 ham, 2 unsure), 3 error
        p, _, cpu = run(["bogofilter", "-C", "-d", d, "-T", "-B"] + files, ok=(0, 1, 2))
        cpu_total += cpu
        n += len(files)
        scores[cls] = [float(line.rsplit(" ", 1)[1]) for line in p.stdout.splitlines()]
    res = metrics(scores["ham"], scores["spam"])
    res["cpu_us"] = cpu_total / n * 1e6
    res["cpu_note"] = "whole process incl. parsing"
    res["learn_1k_s"] = c1 + c2
    ntrain = len(sets[("train", "spam")]) + len(sets[("train", "ham")])
    res["learn_all"] = f"{learn_cpu:.1f} s CPU for {ntrain}"
    res["size"] = dir_size(d)
    results["bogofilter"] = res


SA_CF = """loadplugin Mail::SpamAssassin::Plugin::Bayes
use_bayes 1
use_bayes_rules 1
bayes_auto_learn 0
bayes_path {dir}/bayes
bayes_store_module Mail::SpamAssassin::BayesStore::DBM
lock_method flock
use_learner 1
"""


def eval_sa(args, sets, work, results):
    d = work / "sa"
    rules, site = d / "rules", d / "site"
    rules.mkdir(parents=True)
    site.mkdir()
    (site / "local.cf").write_text(SA_CF.format(dir=d))
    (site / "init.pre").write_text("")
    base = ["sa-learn", "--configpath", rules, "--siteconfigpath", site, "--dbpath", d,
            "-p", d / "user_prefs"]
    (d / "user_prefs").write_text("")
    learn_cpu = 0.0
    for cls in ("spam", "ham"):
        _, _, cpu = run(base + [f"--{cls}", work / "train" / cls])
        learn_cpu += cpu
    d1k = work / "sa-1k"
    shutil.copytree(rules, d1k / "rules")
    (d1k / "site").mkdir()
    (d1k / "site" / "local.cf").write_text(SA_CF.format(dir=d1k))
    (d1k / "user_prefs").write_text("")
    b1k = ["sa-learn", "--configpath", d1k / "rules", "--siteconfigpath", d1k / "site",
           "--dbpath", d1k, "-p", d1k / "user_prefs"]
    _, _, c1 = run(b1k + ["--spam"] + [str(f) for f in sets[("train", "spam")][:500]])
    _, _, c2 = run(b1k + ["--ham"] + [str(f) for f in sets[("train", "ham")][:500]])
    scores, cpu_total, n = {}, 0.0, 0
    helper = Path(__file__).with_name("bayes_eval_sa.pl")
    for cls in ("ham", "spam"):
        files = [str(f) for f in sets[("test", cls)]]
        p, _, _ = run(["perl", helper, rules, site, d / "user_prefs"] + files)
        vals = []
        for line in p.stdout.splitlines():
            if line.startswith("#cpu "):
                cpu_total += float(line.split()[1])
                continue
            vals.append(float(line.rsplit("\t", 1)[1]))
        n += len(files)
        scores[cls] = vals
    res = metrics(scores["ham"], scores["spam"])
    res["cpu_us"] = cpu_total / n * 1e6
    res["cpu_note"] = "Bayes scan only (tokenize + score), parsing excluded"
    res["learn_1k_s"] = c1 + c2
    ntrain = len(sets[("train", "spam")]) + len(sets[("train", "ham")])
    res["learn_all"] = f"{learn_cpu:.1f} s CPU for {ntrain}"
    res["size"] = sum(f.stat().st_size for f in d.glob("bayes_*"))
    results["SpamAssassin Bayes"] = res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True, type=Path)
    ap.add_argument("--moatd", required=True)
    ap.add_argument("--seed", type=int, default=20021)
    ap.add_argument("--train", type=float, default=0.5)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--combiners", default="fisher,osb,geomean")
    ap.add_argument("--only", default="moatd,bogofilter,sa")
    args = ap.parse_args()
    args.combiners = args.combiners.split(",")
    work = args.work or Path(os.environ.get("TMPDIR", "/tmp")) / f"bayes_eval.{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    sets = split(args.corpus, args.seed, args.train, work)
    print(f"split seed={args.seed}: train {len(sets[('train', 'spam')])} spam +"
          f" {len(sets[('train', 'ham')])} ham, test {len(sets[('test', 'spam')])} spam +"
          f" {len(sets[('test', 'ham')])} ham")
    results = {}
    only = args.only.split(",")
    if "moatd" in only:
        eval_moatd(args, sets, work, results)
    if "bogofilter" in only:
        eval_bogofilter(args, sets, work, results)
    if "sa" in only:
        eval_sa(args, sets, work, results)
    hdr = (f"{'filter':22s} {'spam@0.1%':>10s} {'spam@1%':>9s} {'1-AUC':>9s}"
           f" {'CPU/msg':>9s} {'learn 1k':>9s} {'store':>9s}  notes")
    print(hdr)
    for name, r in results.items():
        print(f"{name:22s} {r[0.001] * 100:9.1f}% {r[0.01] * 100:8.1f}% {r['1-auc']:9.5f}"
              f" {r['cpu_us']:7.0f}us {r['learn_1k_s']:8.2f}s {r['size'] / 1e6:7.1f}MB"
              f"  {r['cpu_note']}; learn all {r['learn_all']}")
    if os.environ.get("KEEP") is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
