#!/usr/bin/python3
"""Fit the scores of a rule set on a corpus of known spam and ham.

    contrib/rules-fit.py --rules rules --scores rules/50_scores.cf \\
        --spam DIR... --ham DIR... [--ham-weight 4] [--max-score 4]

Runs `warden score -v` over the messages with every rule at its default
score (the scores file left out), so each message gives the rules it hits
and how often. Then fits one score per rule, the way SpamAssassin's
perceptron does: a logistic model whose decision line is a total of 5
(the tag threshold), with ham counted --ham-weight times (a false positive
costs more than a miss), an L2 penalty that keeps scores small, scores of
spam signs kept >= 0 and of rules with `tflags nice` kept <= 0, and each
score capped (--max-score, or per rule with --caps FILE: see
contrib/rules-fit.caps for why). Rules whose score is set in the rule
files themselves (GTUBE, the WARDEN_* results, hand-set scores) keep it.

Writes the scores file and prints what the new scores do on the corpus it
was fitted on. Fit on a tuning set only, then measure on messages the fit
never saw (contrib/spam-corpus.py does both for the SpamAssassin corpus).
"""

import argparse
import math
import os
import random
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HIT_RE = re.compile(r"^\s+(-?[0-9.]+) (\S+)")
MSG_RE = re.compile(r"^(.*): score=(-?[0-9.]+) tests=")
THRESHOLD = 5.0


def rule_files(rules, scores):
    """The .cf files of rules, without the scores file."""
    files = []
    for r in rules:
        if os.path.isdir(r):
            files += [os.path.join(r, f) for f in sorted(os.listdir(r))
                      if f.endswith(".cf")]
        else:
            files.append(r)
    return [f for f in files
            if os.path.abspath(f) != os.path.abspath(scores)]


def hand_scores(files):
    """Scores the rule files set themselves: the fit leaves them alone."""
    scores = {}
    for f in files:
        with open(f, errors="replace") as fh:
            for line in fh:
                w = line.split("#", 1)[0].split()
                if len(w) >= 3 and w[0] == "score":
                    try:
                        scores[w[1]] = float(w[2].strip("()"))
                    except ValueError:
                        pass
    return scores


def nice_rules(files):
    nice = set()
    for f in files:
        with open(f, errors="replace") as fh:
            for line in fh:
                w = line.split()
                if len(w) >= 3 and w[0] == "tflags" and "nice" in w[2:]:
                    nice.add(w[1])
    return nice


def hits(warden, files, dirs):
    """[{rule: count}] for every message in dirs, default scores."""
    with tempfile.TemporaryDirectory() as tmp:
        # every rule at 1 point, so its printed score is its hit count
        neutral = os.path.join(tmp, "zz_neutral.cf")
        cmd = [warden, "score", "-v"]
        for f in files:
            cmd += ["--rules", f]
        names = set()
        for f in files:
            with open(f, errors="replace") as fh:
                for line in fh:
                    w = line.split()
                    if len(w) >= 2 and w[0] in ("header", "body", "rawbody",
                                                "uri", "full", "meta") \
                            and not w[1].startswith("__"):
                        names.add(w[1])
        with open(neutral, "w") as fh:
            for n in sorted(names):
                fh.write("score %s 1\n" % n)
        cmd += ["--rules", neutral] + dirs
        out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True,
                             errors="replace", check=True).stdout
    msgs, cur = [], None
    for line in out.splitlines():
        if MSG_RE.match(line):
            cur = {}
            msgs.append(cur)
        elif cur is not None:
            m = HIT_RE.match(line)
            if m:
                cur[m.group(2)] = float(m.group(1))
    return msgs


def read_caps(path):
    """[(name or prefix*, max)] from a caps file (see rules-fit.caps)."""
    caps = []
    with open(path) as f:
        for line in f:
            w = line.split("#", 1)[0].split()
            if len(w) == 2:
                caps.append((w[0], float(w[1])))
    return caps


def cap_of(rule, caps, default):
    for pat, mx in caps:
        if rule == pat or (pat.endswith("*") and rule.startswith(pat[:-1])):
            return mx
    return default


def fit(data, rules, nice, fixed, ham_weight, l2, cap, epochs, seed,
        caps=()):
    """Projected gradient descent on the weighted logistic loss."""
    idx = {r: i for i, r in enumerate(rules)}
    limit = [cap_of(r, caps, cap) for r in rules]
    w = [0.5 if r not in nice else -0.5 for r in rules]
    for r, s in fixed.items():
        if r in idx:
            w[idx[r]] = s
    g2 = [1e-8] * len(rules)
    rows = [([(idx[r], v) for r, v in x.items() if r in idx], y)
            for x, y in data]
    rnd = random.Random(seed)
    lr, temp = 0.5, 1.5
    for _ in range(epochs):
        rnd.shuffle(rows)
        grad = [0.0] * len(rules)
        for feats, y in rows:
            total = sum(w[i] * v for i, v in feats)
            z = (total - THRESHOLD) / temp
            p = 1.0 / (1.0 + math.exp(-max(-30, min(30, z))))
            err = (p - y) * (ham_weight if y == 0 else 1.0) / temp
            for i, v in feats:
                grad[i] += err * v
        for i, r in enumerate(rules):
            if r in fixed:
                continue
            gi = grad[i] / len(rows) + 2 * l2 * w[i]
            g2[i] += gi * gi
            w[i] -= lr * gi / math.sqrt(g2[i])  # AdaGrad
            w[i] = min(w[i], 0.0) if r in nice else max(w[i], 0.0)
            w[i] = max(-limit[i], min(limit[i], w[i]))
    return dict(zip(rules, w))


def evaluate(data, scores):
    spam = [x for x, y in data if y == 1]
    ham = [x for x, y in data if y == 0]

    def total(x):
        return sum(scores.get(r, 0) * v for r, v in x.items())
    tp = sum(total(x) >= THRESHOLD for x in spam)
    fp = sum(total(x) >= THRESHOLD for x in ham)
    return tp, len(spam), fp, len(ham)


def cross_validate(data, rules, nice, fixed, args):
    """K-fold estimate of what the fit does on messages it did not see."""
    shuffled = list(data)
    random.Random(args.seed).shuffle(shuffled)
    tp = ns = fp = nh = 0
    for k in range(args.cv):
        test = shuffled[k::args.cv]
        train = [d for i, d in enumerate(shuffled) if i % args.cv != k]
        s = fit(train, rules, nice, fixed, args.ham_weight, args.l2,
                args.max_score, args.epochs, args.seed, args.caps)
        a, b, c, d = evaluate(test, s)
        tp, ns, fp, nh = tp + a, ns + b, fp + c, nh + d
    print("cross-validation (%d folds): spam detected %.1f%%, ham flagged "
          "%.2f%%" % (args.cv, 100.0 * tp / max(ns, 1),
                      100.0 * fp / max(nh, 1)))


def write_scores(path, scores, fixed, note):
    with open(path, "w") as f:
        f.write("# Scores of the rules in this directory, fitted by "
                "contrib/rules-fit.py\n# %s\n#\n" % note)
        f.write("# Rules not listed keep SpamAssassin's default (1 point; "
                "__ rules none).\n# A rule scored 0 is off. Override any of "
                "them in a file of your own\n# loaded after this one.\n\n")
        for r in sorted(scores):
            if r in fixed:
                continue
            f.write("score %-26s %.3f\n" % (r, scores[r]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warden", default=os.path.join(ROOT, "build", "warden"))
    ap.add_argument("--rules", action="append", required=True)
    ap.add_argument("--scores", required=True,
                    help="the scores file to write (left out of the fit)")
    ap.add_argument("--spam", action="append", required=True)
    ap.add_argument("--ham", action="append", required=True)
    ap.add_argument("--ham-weight", type=float, default=9.0)
    ap.add_argument("--l2", type=float, default=0.0001)
    ap.add_argument("--max-score", type=float, default=4.0)
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cv", type=int, default=0, metavar="K",
                    help="also report K-fold cross-validation on the corpus "
                    "(fit on K-1 parts, measure on the one left out)")
    ap.add_argument("--caps", metavar="FILE",
                    help="per-rule caps (see contrib/rules-fit.caps)")
    args = ap.parse_args()
    args.caps = read_caps(args.caps) if args.caps else []

    files = rule_files(args.rules, args.scores)
    nice = nice_rules(files)
    spam = hits(args.warden, files, args.spam)
    ham = hits(args.warden, files, args.ham)
    data = [(x, 1) for x in spam] + [(x, 0) for x in ham]
    rules = sorted({r for x, _ in data for r in x})
    fixed = {r: s for r, s in hand_scores(files).items() if r in rules}
    if args.cv > 1:
        cross_validate(data, rules, nice, fixed, args)
    scores = fit(data, rules, nice, fixed, args.ham_weight, args.l2,
                 args.max_score, args.epochs, args.seed, args.caps)
    scores = {r: round(s, 3) for r, s in scores.items()}
    tp, ns, fp, nh = evaluate(data, scores)
    note = "on %s (spam) and %s (ham): %d/%d spam at >= 5, %d/%d ham" % (
        ",".join(os.path.basename(d.rstrip("/")) for d in args.spam),
        ",".join(os.path.basename(d.rstrip("/")) for d in args.ham),
        tp, ns, fp, nh)
    write_scores(args.scores, scores, fixed, note)
    print(note)
    print("spam detected %.1f%%, ham flagged %.2f%%" %
          (100.0 * tp / max(ns, 1), 100.0 * fp / max(nh, 1)))
    for r in sorted(scores, key=lambda r: -abs(scores[r]))[:25]:
        print("  %7.3f %s" % (scores[r], r))


if __name__ == "__main__":
    sys.exit(main())
