#!/usr/bin/python3
"""Warden's scorer against SpamAssassin itself, on the same messages and
the same rules, in one run.

    contrib/bench/scoring.py [--warden build/warden] [--messages 200]
                             [--groups spam-2,easy-ham-2] [--rules DIR]

1. Loads SpamAssassin's shipped rule files (/usr/share/spamassassin) with
   `warden score --list --warnings` and reports how many rules of each
   type load and what kinds of lines are skipped.
2. Takes a sample of the public corpus (contrib/spam-corpus.py fetches
   it), every k-th message of each group.
3. Scores the sample with `warden score` (one thread) and with spamd
   (`spamd -L`, local tests only, one child, Bayes off) through spamc, and
   prints messages per second per core for both and the ratio.
4. Compares the hits message by message, for the rule types Warden runs:
   how many of SpamAssassin's hits Warden also has (recall), how many of
   Warden's SpamAssassin also has (precision), the share of messages where
   both agree exactly, and the rules that disagree most.

Needs the spamassassin, spamd and spamc packages (Debian 12).
"""

import argparse
import collections
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SA_RULES = "/usr/share/spamassassin"
MSG_RE = re.compile(r"^(.*): score=(-?[0-9.]+) tests=(\S*)$")


def corpus_module():
    spec = importlib.util.spec_from_file_location(
        "spam_corpus", os.path.join(ROOT, "contrib", "spam-corpus.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample(cache, groups, n, workdir):
    """Copy every k-th message of each group; returns the paths."""
    corpus = corpus_module()
    data = corpus.fetch(cache)
    paths = []
    per = max(1, n // len(groups))
    for g in groups:
        d = corpus.extract(data, cache, g)
        files = sorted(os.listdir(d))
        step = max(1, len(files) // per)
        for f in files[::step][:per]:
            dst = os.path.join(workdir, "%s-%s" % (g, f))
            shutil.copy(os.path.join(d, f), dst)
            paths.append(dst)
    return paths


def load_report(warden, rules):
    out = subprocess.run([warden, "score", "--rules", rules, "--list",
                          "--warnings"], stdout=subprocess.PIPE, text=True,
                         errors="replace", check=True).stdout
    loaded = collections.Counter()
    runs = {}
    kinds = collections.Counter()
    partial = 0
    for line in out.splitlines():
        w = line.split()
        if w[:1] == ["rule"] and w[1] != "result":
            loaded[w[1]] += 1
            if "partial" in w:
                partial += 1
            elif w[4] == "runs":
                runs[w[2]] = w[1]
        elif line.startswith("warning: "):
            why = line.split(": ", 2)[-1]
            kinds[re.sub(r"\s+\S+: .*|:.*", "", why)[:40]] += 1
    print("SpamAssassin rules from %s, as Warden loads them:" % rules)
    for t in ("header", "mimeheader", "body", "rawbody", "uri", "full",
              "meta"):
        print("  %-10s %5d" % (t, loaded[t]))
    print("  metas left out of the comparison (they read a rule Warden "
          "does not load): %d" % partial)
    print("  compared: %d rules that run (scored, or read by a scored meta)"
          % len(runs))
    print("  skipped lines by kind (top 15):")
    for k, c in kinds.most_common(15):
        print("    %5d %s" % (c, k))
    return runs


def warden_score(warden, rules, workdir):
    t0 = time.monotonic()
    out = subprocess.run([warden, "score", "--rules", rules, workdir],
                         stdout=subprocess.PIPE, text=True, errors="replace",
                         check=True).stdout
    wall = time.monotonic() - t0
    hits, rate = {}, 0.0
    for line in out.splitlines():
        m = MSG_RE.match(line)
        if m:
            hits[os.path.basename(m.group(1))] = set(
                t for t in m.group(3).split(",") if t and t != "-")
        elif line.startswith("messages="):
            rate = float(re.search(r"rate=([0-9.]+)", line).group(1))
    return hits, rate, wall


def spamd_score(paths, rules):
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="warden-spamd-")
    pidfile = os.path.join(tmp, "spamd.pid")
    cmd = ["spamd", "-L", "-x", "-i", "127.0.0.1:%d" % port, "-m", "1",
           "--min-children=1", "--min-spare=1", "--max-spare=1",
           "-s", "stderr", "-r", pidfile,
           "--cf=use_bayes 0", "--cf=bayes_auto_learn 0",
           "--cf=use_auto_whitelist 0"]
    if os.geteuid() == 0:
        cmd += ["-u", "nobody", "--virtual-config-dir=%s" % tmp]
        os.chmod(tmp, 0o777)
    log = open(os.path.join(tmp, "spamd.log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.close()
                    sys.exit("spamd did not start:\n" +
                             open(log.name).read()[-2000:])
                time.sleep(0.2)
        # one message first: the child is forked and warm before timing
        subprocess.run(["spamc", "-d", "127.0.0.1", "-p", str(port), "-y"],
                       stdin=open(paths[0], "rb"), stdout=subprocess.PIPE)
        hits = {}
        t0 = time.monotonic()
        for p in paths:
            r = subprocess.run(["spamc", "-d", "127.0.0.1", "-p", str(port),
                                "-y", "-s", "10485760"],
                               stdin=open(p, "rb"), stdout=subprocess.PIPE,
                               text=True, errors="replace")
            hits[os.path.basename(p)] = set(
                t for t in r.stdout.strip().split(",") if t)
        wall = time.monotonic() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return hits, len(paths) / wall, wall


def compare(sa, wd, runs):
    both = only_sa = only_wd = same = 0
    miss, extra = collections.Counter(), collections.Counter()
    for name, s in sa.items():
        s = {t for t in s if t in runs}
        w = {t for t in wd.get(name, set()) if t in runs}
        both += len(s & w)
        only_sa += len(s - w)
        only_wd += len(w - s)
        same += s == w
        miss.update(s - w)
        extra.update(w - s)
    n = len(sa)
    print("hits on the rule types Warden runs, over %d messages:" % n)
    print("  SpamAssassin hits Warden also has (recall):    %5.1f%% (%d/%d)"
          % (100.0 * both / max(both + only_sa, 1), both, both + only_sa))
    print("  Warden hits SpamAssassin also has (precision): %5.1f%% (%d/%d)"
          % (100.0 * both / max(both + only_wd, 1), both, both + only_wd))
    print("  messages with exactly the same hits:           %5.1f%% (%d/%d)"
          % (100.0 * same / max(n, 1), same, n))
    print("  SpamAssassin only, most often: %s" % ", ".join(
        "%s(%d)" % kv for kv in miss.most_common(8)))
    print("  Warden only, most often:       %s" % ", ".join(
        "%s(%d)" % kv for kv in extra.most_common(8)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warden", default=os.path.join(ROOT, "build", "warden"))
    ap.add_argument("--rules", default=SA_RULES)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--groups", default="spam-2,easy-ham-2")
    ap.add_argument("--cache", default=os.environ.get(
        "WARDEN_CORPUS_CACHE", "/var/tmp/warden-corpus"))
    args = ap.parse_args()
    if not shutil.which("spamd") or not shutil.which("spamc"):
        sys.exit("needs spamd and spamc (apt-get install spamd spamc)")

    runs = load_report(args.warden, args.rules)
    work = tempfile.mkdtemp(prefix="warden-bench-msgs-")
    try:
        paths = sample(args.cache, args.groups.split(","), args.messages,
                       work)
        wd_hits, wd_rate, wd_wall = warden_score(args.warden, args.rules,
                                                 work)
        sa_hits, sa_rate, sa_wall = spamd_score(paths, args.rules)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("speed, %d messages (%s), one core each:" % (len(paths),
                                                       args.groups))
    print("  warden score: %8.1f msgs/s (scoring only; %.1fs with loading "
          "the rules)" % (wd_rate, wd_wall))
    print("  spamd -L:     %8.1f msgs/s (through spamc, %.1fs)" %
          (sa_rate, sa_wall))
    print("  ratio:        %8.1fx" % (wd_rate / sa_rate if sa_rate else 0))
    compare(sa_hits, wd_hits, runs)


if __name__ == "__main__":
    main()
