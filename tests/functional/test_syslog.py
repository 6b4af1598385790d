"""log.target: syslog sends the same lines to the system logger, with the
configured facility and level. The test plays the system logger on
/dev/log (only when nothing else does: it never takes over a running
one) and reads what Warden sends there."""

import os
import re
import socket
import time

import pytest

from wardentest import SMTPClient

DEV_LOG = "/dev/log"
LOG_MAIL, LOG_LOCAL3 = 2, 19
LOG_ERR, LOG_INFO = 3, 6


@pytest.fixture
def syslog_socket():
    if os.path.exists(DEV_LOG) or os.geteuid() != 0:
        pytest.skip("/dev/log is in use (or not ours to create)")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(DEV_LOG)
    os.chmod(DEV_LOG, 0o666)        # Warden writes after dropping root
    s.settimeout(0.2)
    yield s
    s.close()
    os.unlink(DEV_LOG)


def read_until(sock, pid, pattern, timeout=10.0):
    """Datagrams from warden[pid] (other daemons of a parallel test may
    log here too) until one matches pattern (bytes regex)."""
    got = []
    tag = b"warden[%d]: " % pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            d = sock.recv(65536)
        except socket.timeout:
            continue
        if tag not in d:
            continue
        got.append(d)
        if re.search(pattern, d):
            return got
    raise AssertionError("no %r in %r" % (pattern, got))


def test_lines_reach_syslog_with_facility_and_level(warden_factory, capture,
                                                    syslog_socket):
    w = warden_factory({"log": {"target": "syslog", "facility": "local3",
                                "level": "info"}}, capture)
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    c.cmd("RCPT TO:<b@example.net>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(b"Subject: s\r\n\r\nx\r\n.\r\n")
    assert c.read_reply().code == 250
    got = read_until(syslog_socket, w.pid, rb"result=sent")
    line = got[-1]
    m = re.match(rb"<(\d+)>.*warden\[(\d+)\]: ", line)
    assert m, line
    assert int(m.group(1)) == LOG_LOCAL3 * 8 + LOG_INFO
    assert int(m.group(2)) == w.pid
    assert b"from=<a@example.com> to=<b@example.net>" in line
    # and nothing on stderr but what came before the logger was set up
    assert "result=sent" not in w.log()


def test_level_filters(warden_factory, capture, syslog_socket):
    cfg = {"log": {"target": "syslog", "level": "error"}}
    w = warden_factory(cfg, capture)
    c = SMTPClient(w.port)
    c.expect(220)
    c.cmd("QUIT", expect=221)
    c.wait_closed()
    # a broken config: the reload fails, which is logged as an error
    bad = dict(cfg, workers=1000)
    w.reload(bad, wait=False)
    got = read_until(syslog_socket, w.pid, rb"reload failed")
    assert any(re.search(rb"\.yaml:\d+: workers", g) for g in got), got
    prios = [int(re.match(rb"<(\d+)>", g).group(1)) for g in got]
    assert all(p % 8 == LOG_ERR and p // 8 == LOG_MAIL for p in prios), got
    # info lines (the session, "reload: reading") were filtered out
    assert not any(b"disconnect" in g or b"reload: reading" in g
                   for g in got), got
