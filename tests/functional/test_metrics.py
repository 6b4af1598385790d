"""The Prometheus endpoint: scraped over real HTTP while real sessions run,
its counters move with what happened (connections, transactions,
rejections by stage and check, limits, reloads, backend failures, DNS
and Redis latency, DKIM and DMARC results, content scoring), and nothing
but GET /metrics is served."""

import json
import os
import re
import socket
import urllib.error
import urllib.request

import pytest

from dnstest import DNSTestServer
from redistest import RedisServer
from wardentest import SMTPClient, check_config, dump_yaml, free_port, wait_for

SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+)$')


def scrape(w):
    """{(name, frozenset(labels)): value} from one GET /metrics."""
    url = "http://127.0.0.1:%d/metrics" % w.metrics_port
    with urllib.request.urlopen(url, timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a Prometheus sample line: %r" % line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"',
                                      m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def metered(warden_factory, backend, config=None):
    port = free_port()
    cfg = {"metrics": {"listen": "127.0.0.1:%d" % port}}
    cfg.update(config or {})
    w = warden_factory(cfg, backend)
    w.metrics_port = port
    # the harness waits for the SMTP listeners, which are bound first
    wait_for(lambda: _accepts(port), message="metrics port %d" % port)
    return w


def _accepts(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def send(w, source="127.0.0.1", rcpt="b@example.net"):
    c = SMTPClient()
    c.connect(w.port, source=(source, 0))
    c.expect(220)
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    c.cmd("RCPT TO:<%s>" % rcpt, expect=250)
    c.cmd("DATA", expect=354)
    c.send(b"Subject: m\r\n\r\nbody\r\n.\r\n")
    return c, c.read_reply()


def test_connections_and_transactions_move(warden_factory, capture):
    w = metered(warden_factory, capture)
    before = scrape(w)
    assert val(before, "warden_connections_open") == 0
    c, r = send(w)
    assert r.code == 250
    during = scrape(w)
    assert val(during, "warden_connections_open") == 1
    assert (val(during, "warden_connections_total")
            == val(before, "warden_connections_total") + 1)
    assert val(during, "warden_transactions_total", result="sent") == 1
    c.cmd("QUIT", expect=221)
    c.wait_closed()
    wait_for(lambda: val(scrape(w), "warden_connections_open") == 0)
    assert any(k[0] == "warden_build_info" and v == 1
               for k, v in during.items())


def test_rejections_by_stage_and_check(warden_factory, capture_factory,
                                       tmp_path):
    cap = capture_factory(replies={"RCPT": b"550 5.1.1 No such user\r\n"})
    pol = tmp_path / "p.yaml"
    pol.write_text(dump_yaml({
        "access": [{"networks": ["127.0.0.90/32"], "action": "reject"}],
        "limits": [{"name": "two-per-ip", "key": "client_ip",
                    "count": "messages", "rate": "2/1h"},
                   {"name": "watch", "key": "client_ip", "count": "messages",
                    "rate": "1/1h", "dry_run": True}]}))
    w = metered(warden_factory, cap, {"policies": [str(pol)]})
    # refused at connect by the access rule
    c = SMTPClient()
    c.connect(w.port, source=("127.0.0.90", 0))
    assert c.read_reply().code == 554
    # the backend refuses a recipient; the limit refuses the third MAIL
    d = SMTPClient()
    d.connect(w.port, source=("127.0.0.91", 0))
    d.expect(220)
    d.ehlo()
    for _ in range(2):
        d.cmd("MAIL FROM:<a@example.com>", expect=250)
        assert d.cmd("RCPT TO:<nobody@example.net>").code == 550
        d.cmd("RSET", expect=250)
    assert d.cmd("MAIL FROM:<a@example.com>").code == 451
    s = scrape(w)
    assert val(s, "warden_connections_refused_total", reason="access") == 1
    assert val(s, "warden_rejections_total", stage="connect",
               check="access") == 1
    assert val(s, "warden_rejections_total", stage="rcpt",
               check="backend") == 2
    assert val(s, "warden_rejections_total", stage="mail",
               check="limits") == 1
    assert val(s, "warden_limit_checks_total", result="exceeded") == 1
    # the dry-run limit said no to the second MAIL without refusing it
    assert val(s, "warden_limit_checks_total", result="dry_run") == 1
    assert val(s, "warden_limit_exceeded_total", limit="two-per-ip",
               mode="enforced") == 1
    assert val(s, "warden_limit_exceeded_total", limit="watch",
               mode="dry_run") >= 1
    assert val(s, "warden_transactions_total", result="aborted") == 2


def test_reloads_counted(warden_factory, capture, tmp_path):
    pol = tmp_path / "p.yaml"
    pol.write_text("access: []\n")
    w = metered(warden_factory, capture, {"policies": [str(pol)]})
    assert w.reload().group(1) == ": ok"
    pol.write_text("access:\n  - networks: [nonsense]\n    action: reject\n")
    assert w.reload().group(1) == " failed"
    s = scrape(w)
    assert val(s, "warden_config_reloads_total", result="ok") == 1
    assert val(s, "warden_config_reloads_total", result="failed") == 1


def test_backend_down_counted(warden_factory):
    w = metered(warden_factory, "127.0.0.1:%d" % free_port())
    c = SMTPClient(w.port)
    assert c.read_reply().code == 421
    wait_for(lambda: val(scrape(w), "warden_backend_errors_total",
                         kind="connect") == 1)


def test_dns_latency_histogram(warden_factory, capture):
    dns = DNSTestServer([("9.0.0.127.in-addr.arpa", "PTR", "c9.test."),
                         ("c9.test", "A", "127.0.0.9")])
    try:
        w = metered(warden_factory, capture,
                    {"backend": {"client_identity": "xclient"},
                     "dns": {"resolve_client": True,
                             "servers": [dns.address]}})
        c = SMTPClient()
        c.connect(w.port, source=("127.0.0.9", 0))
        c.expect(220, timeout=10)
        c.ehlo()
        s = scrape(w)
        # the PTR and the A query, both answered
        assert val(s, "warden_dns_queries_total", result="ok") == 2
        assert val(s, "warden_dns_latency_seconds_count") == 2
        assert val(s, "warden_dns_latency_seconds_bucket", le="+Inf") == 2
        assert 0 < val(s, "warden_dns_latency_seconds_sum") < 10
    finally:
        dns.stop()


GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def test_dkim_dmarc_and_scoring_counted(warden_factory, capture, tmp_path):
    """Unsigned mail from a domain with p=reject (not honored): dkim=none
    and dmarc=fail each time; one message scored clean, one tagged, one
    rejected at end of data by its score."""
    dns = DNSTestServer([("_dmarc.example.org", "TXT",
                          "v=DMARC1; p=reject")])
    rules = tmp_path / "local.cf"
    rules.write_text("body LOCAL_TAG /tag this message/\n"
                     "score LOCAL_TAG 6\n"
                     "body LOCAL_GTUBE /GTUBE-STANDARD-ANTI-UBE-TEST/\n"
                     "score LOCAL_GTUBE 1000\n")
    pol = tmp_path / "p.yaml"
    pol.write_text("spf: {}\ndkim: {}\ndmarc: {}\n"
                   "scoring:\n"
                   "  rules: [%s]\n"
                   "  thresholds:\n"
                   "    - {tag: 5, reject: 15}\n" % rules)
    try:
        w = metered(warden_factory, capture,
                    {"policies": [str(pol)],
                     "dns": {"servers": [dns.address], "timeout": "1s"}})
        codes = []
        for body in (b"hello", b"please tag this message", GTUBE):
            c = SMTPClient(w.port)
            c.expect(220)
            c.ehlo()
            codes.append(c.sendmail(
                "alice@example.org", ["bob@example.com"],
                b"From: alice@example.org\r\nTo: bob@example.com\r\n"
                b"Subject: metrics\r\n\r\n" + body + b"\r\n").code)
            c.cmd("QUIT")
        assert codes == [250, 250, 550]
        s = scrape(w)
        assert val(s, "warden_dkim_results_total", result="none") == 3
        assert val(s, "warden_dmarc_results_total", result="fail") == 3
        assert val(s, "warden_scored_messages_total", result="accept") == 1
        assert val(s, "warden_scored_messages_total", result="tag") == 1
        assert val(s, "warden_scored_messages_total", result="reject") == 1
        assert val(s, "warden_rejections_total", stage="eom",
                   check="score") == 1
        assert val(s, "warden_score_duration_seconds_count") == 3
        assert 0 < val(s, "warden_score_duration_seconds_sum") < 10
    finally:
        dns.stop()


def test_redis_calls_and_latency(warden_factory, capture, tmp_path):
    redis = RedisServer()
    try:
        pol = tmp_path / "p.yaml"
        pol.write_text(dump_yaml({"limits": [{
            "name": "m", "key": "client_ip", "count": "messages",
            "rate": "100/1m"}]}))
        w = metered(warden_factory, capture, {
            "policies": [str(pol)],
            "store": {"type": "redis", "redis": redis.address}})
        for _ in range(3):
            c, r = send(w)
            assert r.code == 250
        s = scrape(w)
        assert val(s, "warden_store_calls_total", result="ok") == 3
        assert val(s, "warden_store_latency_seconds_count") == 3
        # buckets are cumulative and end with every call
        buckets = sorted((float(dict(k[1])["le"].replace("+Inf", "inf")), v)
                         for k, v in s.items()
                         if k[0] == "warden_store_latency_seconds_bucket")
        counts = [v for _, v in buckets]
        assert counts == sorted(counts) and counts[-1] == 3
        redis.kill()
        c = SMTPClient(w.port)
        c.expect(220)
        c.ehlo()
        c.cmd("MAIL FROM:<a@example.com>", expect=250)   # fail-open
        s = scrape(w)
        assert val(s, "warden_limit_checks_total", result="store_error") >= 1
    finally:
        redis.stop()


def test_only_get_metrics_is_served(warden_factory, capture):
    w = metered(warden_factory, capture)
    base = "http://127.0.0.1:%d" % w.metrics_port
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(base + "/", timeout=5)
    assert e.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(
            base + "/metrics", data=b"x", method="POST"), timeout=5)
    # evhttp refuses a method it does not allow (501), or a body (413)
    assert e.value.code in (405, 413, 501)
    assert w.running()


def test_bad_metrics_address_is_a_config_error(warden_bin, tmp_path):
    rc, out = check_config({"metrics": {"listen": "localhost:x"}},
                           bin_path=warden_bin)
    assert rc != 0
    assert re.search(r"\.yaml:\d+: metrics\.listen: invalid port", out), out


def test_dashboard_uses_only_exported_metrics(warden_factory, capture):
    """contrib/grafana-dashboard.json must not chart a metric that does
    not exist (a renamed one would leave an empty panel)."""
    path = os.path.join(os.path.dirname(__file__), "..", "..", "contrib",
                        "grafana-dashboard.json")
    with open(path) as f:
        exprs = [t["expr"] for p in json.load(f)["panels"]
                 for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\bwarden_[a-z_]+", e)}
    w = metered(warden_factory, capture)
    SMTPClient(w.port).expect(220)
    exported = {name for name, _ in scrape(w)}
    # a family with no sample yet (no limit has refused) is still declared
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics"
                                % w.metrics_port, timeout=5) as r:
        exported |= set(re.findall(r"^# TYPE (\S+) ", r.read().decode(),
                                   re.M))
    assert used and used <= exported, used - exported
