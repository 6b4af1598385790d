"""Started as root, Warden binds its ports (a privileged one included),
then runs as the configured account, every thread of it; it refuses to
start when that account is missing or is root, or cannot write the
spool directory."""

import os
import pwd
import socket

import pytest

from wardentest import TEST_USER, SMTPClient, Warden, free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root to bind port < 1024")


def privileged_port():
    for port in range(600, 1024):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    pytest.skip("no free port below 1024")


def ids(pid, task):
    """(real, effective, saved) uids and gids of one thread."""
    with open("/proc/%d/task/%s/status" % (pid, task)) as f:
        fields = dict(line.split(":", 1) for line in f)
    uids = [int(x) for x in fields["Uid"].split()[:3]]
    gids = [int(x) for x in fields["Gid"].split()[:3]]
    return uids, gids


def test_binds_port_below_1024_then_runs_unprivileged(warden_factory,
                                                      capture):
    port = privileged_port()
    w = warden_factory({"listen": [{"name": "smtp",
                                    "address": "127.0.0.1:%d" % port}],
                        "metrics": {"listen": "127.0.0.1:%d" % free_port()}},
                       capture)
    nobody = pwd.getpwnam(TEST_USER)
    w.wait_log(r"running as user %s \(uid %d" % (TEST_USER, nobody.pw_uid))
    tasks = os.listdir("/proc/%d/task" % w.pid)
    assert len(tasks) >= 3          # main, a second worker, metrics
    for t in tasks:
        uids, gids = ids(w.pid, t)
        assert uids == [nobody.pw_uid] * 3, (t, uids)
        assert gids == [nobody.pw_gid] * 3, (t, gids)
    c = SMTPClient(port)
    c.expect(220)
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    c.cmd("RCPT TO:<b@example.net>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(b"Subject: x\r\n\r\ny\r\n.\r\n")
    assert c.read_reply().code == 250
    assert capture.wait_messages(1)[-1].endswith(b"y\r\n")


def test_missing_account_refused(warden_bin):
    w = Warden({"user": "no-such-user-here"}, "127.0.0.1:%d" % free_port(),
               bin_path=warden_bin, start=False)
    try:
        rc, out = w.run_once(timeout=10)
    finally:
        w.stop()
    assert rc != 0
    assert "user no-such-user-here: no such account" in out


def test_root_account_refused(warden_bin):
    w = Warden({"user": "root"}, "127.0.0.1:%d" % free_port(),
               bin_path=warden_bin, start=False)
    try:
        rc, out = w.run_once(timeout=10)
    finally:
        w.stop()
    assert rc != 0
    assert "Warden does not run as root" in out


def test_spool_dir_must_be_writable(warden_bin, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o755)           # root's: the user cannot write it
    w = Warden({"spool_dir": str(spool)}, "127.0.0.1:%d" % free_port(),
               bin_path=warden_bin, start=False)
    try:
        rc, out = w.run_once(timeout=10)
    finally:
        w.stop()
    assert rc != 0
    assert "spool_dir %s: Permission denied" % spool in out
