"""SIGTERM: stop accepting, tell idle sessions 421, let a transaction in
flight finish (bounded by timeouts.shutdown), then exit 0."""

import signal
import socket
import time

import pytest

from wardentest import SMTPClient


def test_idle_session_gets_421_and_daemon_exits(warden_factory, capture):
    w = warden_factory(backend=capture)
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo()
    w.signal(signal.SIGTERM)
    r = c.read_reply(timeout=5)
    assert r.raw.startswith(b"421 4.3.2")
    c.wait_closed()
    assert w.wait_exit(10) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", w.port), timeout=1)


def test_transaction_in_flight_finishes(warden_factory, capture):
    w = warden_factory({"timeouts": {"shutdown": "10s"}}, capture)
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    c.cmd("RCPT TO:<b@example.net>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(b"Subject: draining\r\n\r\nfirst half\r\n")
    w.signal(signal.SIGTERM)
    time.sleep(0.3)
    assert w.running()
    c.send(b"second half\r\n.\r\n")
    assert c.read_reply().code == 250              # the backend's 250
    assert c.read_reply().raw.startswith(b"421 4.3.2")
    assert w.wait_exit(10) == 0
    assert capture.wait_messages(1)[0].endswith(b"second half\r\n")


def test_drain_is_bounded(warden_factory, capture):
    w = warden_factory({"timeouts": {"shutdown": "1s"}}, capture)
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.com>", expect=250)  # transaction open
    w.signal(signal.SIGTERM)
    t0 = time.monotonic()
    assert w.wait_exit(10) == 0
    assert time.monotonic() - t0 < 5
    data = c.wait_closed()
    assert b"250" not in data                      # never a false 250
