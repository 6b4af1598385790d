"""Line limits, error limits, size limits, connection limits, timeouts,
and the spool spilling a big message to an unlinked file."""

import os
import socket
import time

import wardentest
from wardentest import SMTPClient, dot_stuff


def hello(w):
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo()
    return c


def test_command_line_limit(warden_factory, capture):
    w = warden_factory(backend=capture)
    c = hello(w)
    ok = b"NOOP " + b"x" * (512 - 7) + b"\r\n"        # exactly 512 octets
    assert len(ok) == 512
    c.send(ok)
    assert c.read_reply().code == 250
    c.send(b"NOOP " + b"x" * 600 + b"\r\n")
    assert c.read_reply().raw == b"500 5.5.2 Error: line too long\r\n"
    # a 10 KB line arriving in pieces is one error, then normal service
    for _ in range(10):
        c.send(b"y" * 1024)
        time.sleep(0.01)
    c.send(b"\r\nNOOP\r\n")
    assert c.read_reply().code == 500
    assert c.read_reply().code == 250
    assert not any(len(x) > 512 for x in capture.connections[0].commands)


def test_configured_command_line_limit(warden_factory, capture):
    w = warden_factory({"limits": {"max_command_line": 2048}}, capture)
    c = hello(w)
    c.send(b"NOOP " + b"x" * 1500 + b"\r\n")
    assert c.read_reply().code == 250


def test_nul_in_command(warden_factory, capture):
    w = warden_factory(backend=capture)
    c = hello(w)
    c.send(b"NO\x00OP\r\n")
    assert c.read_reply().raw == b"500 5.5.2 Error: NUL character in command\r\n"


def test_too_many_errors_close(warden_factory, capture):
    w = warden_factory({"limits": {"max_errors": 3}}, capture)
    c = hello(w)
    c.send(b"ONE\r\nTWO\r\nTHREE\r\nFOUR\r\n")
    codes = [r.code for r in c.read_replies(4)]
    assert codes == [502, 502, 502, 421]
    c.wait_closed()
    w.wait_log(r"reason=too many errors")


def test_text_line_limit(warden_factory, capture):
    w = warden_factory(backend=capture)
    c = hello(w)
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    c.cmd("RCPT TO:<b@example.net>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(b"Subject: long\r\n\r\n" + b"z" * 1200 + b"\r\n.\r\n")
    r = c.read_reply()
    assert r.code == 552, r
    assert capture.messages == []
    # exactly 1000 octets with CRLF is fine
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    c.cmd("RCPT TO:<b@example.net>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(b"Subject: ok\r\n\r\n" + b"z" * 998 + b"\r\n.\r\n")
    assert c.read_reply().code == 250


def test_message_size_limit(warden_factory, capture):
    w = warden_factory({"limits": {"max_message_size": 10000}}, capture)
    c = hello(w)
    assert b"SIZE 10000" in c.ehlo().lines
    assert c.cmd("MAIL FROM:<a@example.com> SIZE=20000").raw.startswith(
        b"552 5.3.4")
    c.cmd("MAIL FROM:<a@example.com> SIZE=5000", expect=250)
    c.cmd("RCPT TO:<b@example.net>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 200 + b".\r\n")
    assert c.read_reply().raw.startswith(b"552 5.3.4")
    assert capture.messages == []            # nothing delivered
    assert c.cmd("NOOP").code == 250


def test_recipient_limit(warden_factory, capture):
    w = warden_factory({"limits": {"max_recipients": 2}}, capture)
    c = hello(w)
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    c.cmd("RCPT TO:<1@example.net>", expect=250)
    c.cmd("RCPT TO:<2@example.net>", expect=250)
    assert c.cmd("RCPT TO:<3@example.net>").raw.startswith(b"452 4.5.3")


def test_recipient_overshoot_counts_as_errors(warden_factory, capture):
    """Past max_recipients plus the overshoot allowance, each further 452
    is a protocol error: a client that never stops ends at max_errors."""
    w = warden_factory({"limits": {"max_recipients": 2,
                                   "recipient_overshoot": 3,
                                   "max_errors": 2}}, capture)
    c = hello(w)
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    for i in range(2):
        c.cmd("RCPT TO:<%d@example.net>" % i, expect=250)
    # the overshoot allowance: 452s that are not errors
    for i in range(3):
        assert c.cmd("RCPT TO:<x%d@example.net>" % i).code == 452
    assert c.cmd("RCPT TO:<y1@example.net>").code == 452     # error 1
    r = c.cmd("RCPT TO:<y2@example.net>")                   # error 2
    assert r.code == 452
    assert c.read_reply().raw.startswith(b"421 4.7.0")
    c.wait_closed()
    # a new transaction starts its own count
    d = hello(w)
    for _ in range(2):
        d.cmd("MAIL FROM:<a@example.com>", expect=250)
        for i in range(2):
            d.cmd("RCPT TO:<%d@example.net>" % i, expect=250)
        for i in range(3):
            assert d.cmd("RCPT TO:<x%d@example.net>" % i).code == 452
        d.cmd("RSET", expect=250)
    assert d.cmd("NOOP").code == 250


def test_max_connections(warden_factory, capture):
    # counted across worker threads, wherever the kernel sends each one
    w = warden_factory({"limits": {"max_connections": 2}, "workers": 3},
                       capture)
    a, b = hello(w), hello(w)
    c = SMTPClient(w.port)
    r = c.read_reply()
    assert r.code == 421 and b"too many connections" in r.raw
    c.wait_closed()
    a.cmd("QUIT", expect=221)
    a.wait_closed()
    time.sleep(0.2)
    d = SMTPClient(w.port)
    d.expect(220)                                # room again


def test_command_timeout(warden_factory, capture):
    w = warden_factory({"timeouts": {"command": "1s"}}, capture)
    c = hello(w)
    r = c.read_reply(timeout=5)
    assert r.raw == b"421 4.4.2 warden.test Error: timeout exceeded\r\n"
    c.wait_closed()


def test_slow_backend_is_not_a_client_timeout(warden_factory,
                                              capture_factory):
    # the client waits for a reply we owe it: only backend timeouts apply
    cap = capture_factory(reply_delays={"MAIL": 1.5})
    w = warden_factory({"timeouts": {"command": "1s"}}, cap)
    c = hello(w)
    assert c.cmd("MAIL FROM:<a@example.com>", timeout=5).code == 250


def test_big_message_spills_to_unlinked_file(warden_factory, capture,
                                             tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    wardentest.give_to_test_user(spool)  # Warden spools as that user
    w = warden_factory({"limits": {"spool_memory": 4096,
                                   "max_message_size": "8m"},
                        "spool_dir": str(spool)}, capture)
    body = b"Subject: big\r\n\r\n" + b"".join(
        b"line %06d .............................................\r\n" % i
        for i in range(40000))
    c = hello(w)
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    c.cmd("RCPT TO:<b@example.net>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(body + b".\r\n")
    assert c.read_reply(timeout=30).code == 250
    assert capture.wait_messages(1)[0] == dot_stuff(body)
    # the spool file was unlinked at once: nothing left in spool_dir
    w.wait_log(r"spool: message over 4096 bytes, continuing in a file")
    assert os.listdir(spool) == []


def test_pipelining_flood_is_bounded(warden_factory, capture):
    w = warden_factory({"limits": {"max_pipeline": 10}}, capture)
    c = hello(w)
    n = 3000
    c.send(b"NOOP\r\n" * n)
    codes = [r.code for r in c.read_replies(n, timeout=60)]
    assert codes == [250] * n
