"""The engine seam, end to end: client access rules from a policy file
decide at connect (reject: 554 then 503 to all but QUIT; tempfail: 421),
and SIGHUP reloads policies; a bad file keeps the old ones running."""

import os
import signal
import time

from wardentest import SMTPClient


def write_policy(path, rules):
    with open(path, "w") as f:
        f.write("access:\n")
        for r in rules:
            f.write("  - networks: [%s]\n    action: %s\n" %
                    (r["net"], r["action"]))
            if "reply" in r:
                f.write("    reply: \"%s\"\n" % r["reply"])


def policy_warden(warden_factory, backend, tmp_path, rules):
    pol = tmp_path / "access.yaml"
    write_policy(pol, rules)
    # several workers: a reload must reach every one of them
    return warden_factory({"policies": [str(pol)], "workers": 3},
                          backend), pol


def test_reject_at_connect(warden_factory, capture, tmp_path):
    w, _ = policy_warden(warden_factory, capture, tmp_path, [
        {"net": "127.0.0.66/32", "action": "reject",
         "reply": "554 5.7.1 You are not welcome here"}])
    c = SMTPClient()
    c.connect(w.port, source=("127.0.0.66", 0))
    assert c.read_reply().raw == b"554 5.7.1 You are not welcome here\r\n"
    assert c.cmd("EHLO x").raw.startswith(b"503 5.7.0")
    assert c.cmd("MAIL FROM:<a@example.com>").code == 503
    assert c.cmd("QUIT").code == 221
    c.wait_closed()
    assert capture.connections == []          # backend never contacted
    w.wait_log(r"reject: CONNECT from \[127\.0\.0\.66\]: 554 5\.7\.1 "
               r".*check=access:")
    # other clients are served
    d = SMTPClient()
    d.connect(w.port, source=("127.0.0.67", 0))
    d.expect(220)


def test_tempfail_at_connect(warden_factory, capture, tmp_path):
    w, _ = policy_warden(warden_factory, capture, tmp_path, [
        {"net": "127.0.0.0/8", "action": "tempfail"}])
    c = SMTPClient(w.port)
    r = c.read_reply()
    assert r.code == 421 and r.raw.startswith(b"421 4.7.0")
    c.wait_closed()


def test_first_match_wins(warden_factory, capture, tmp_path):
    w, _ = policy_warden(warden_factory, capture, tmp_path, [
        {"net": "127.0.0.70/32", "action": "accept"},
        {"net": "127.0.0.0/8", "action": "reject"}])
    ok = SMTPClient()
    ok.connect(w.port, source=("127.0.0.70", 0))
    ok.expect(220)
    no = SMTPClient()
    no.connect(w.port, source=("127.0.0.71", 0))
    assert no.read_reply().code == 554


def test_reload_applies_and_bad_file_keeps_old(warden_factory, capture,
                                               tmp_path):
    w, pol = policy_warden(warden_factory, capture, tmp_path, [
        {"net": "192.0.2.0/24", "action": "reject"}])
    # a session in progress keeps its snapshot across the reload
    mid = SMTPClient(w.port)
    mid.expect(220)
    mid.ehlo()
    mid.cmd("MAIL FROM:<a@example.com>", expect=250)
    write_policy(pol, [{"net": "127.0.0.80/32", "action": "reject"}])
    mark = w.log_mark()
    assert w.reload().group(1) == ": ok"
    # every worker thread takes the new snapshot in its own loop
    for n in range(3):
        w.wait_log(r"worker %d: new configuration in use" % n, since=mark)
    for _ in range(8):
        c = SMTPClient()
        c.connect(w.port, source=("127.0.0.80", 0))
        assert c.read_reply().code == 554
    mid.cmd("RCPT TO:<b@example.net>", expect=250)
    mid.cmd("DATA", expect=354)
    mid.send(b"Subject: x\r\n\r\ny\r\n.\r\n")
    assert mid.read_reply().code == 250
    # now a broken edit: logged with file:line, old policy stays
    with open(pol, "w") as f:
        f.write("access:\n  - networks: [not-a-network]\n"
                "    action: reject\n")
    assert w.reload().group(1) == " failed"
    w.wait_log(r"%s:2: " % str(pol))
    c = SMTPClient()
    c.connect(w.port, source=("127.0.0.80", 0))
    assert c.read_reply().code == 554            # still the old rules
    d = SMTPClient()
    d.connect(w.port, source=("127.0.0.81", 0))
    d.expect(220)
    assert w.running()
