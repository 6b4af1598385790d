"""When the backend is unreachable, slow or dies: the client hears 421 or
451, never 250, and nothing half-received reaches the backend."""

import socket
import time

from wardentest import CaptureBackend, SMTPClient, free_port


def test_unreachable_backend_421(warden_factory):
    w = warden_factory(backend="127.0.0.1:%d" % free_port())
    c = SMTPClient(w.port)
    r = c.read_reply()
    assert r.code == 421 and r.raw.startswith(b"421 4.3.2 warden.test")
    c.wait_closed()
    w.wait_log(r"reason=backend unavailable")


def test_failover_to_second_backend(warden_factory, capture):
    w = warden_factory(backend=["127.0.0.1:%d" % free_port(), capture])
    c = SMTPClient(w.port)
    assert c.expect(220).raw == b"220 backend.test ESMTP capture\r\n"


def test_defer_mode_greets_then_451(warden_factory):
    w = warden_factory({"backend": {"on_unavailable": "defer"}},
                       "127.0.0.1:%d" % free_port())
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo()
    assert c.cmd("MAIL FROM:<a@example.com>").raw.startswith(b"451 4.3.0")
    assert c.cmd("QUIT").code == 221


def open_tx(c):
    c.expect(220)
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.com>", expect=250)


def test_backend_lost_before_rcpt_reply(warden_factory, capture_factory):
    cap = capture_factory(drop_after="RCPT")
    w = warden_factory(backend=cap)
    c = SMTPClient(w.port)
    open_tx(c)
    assert c.cmd("RCPT TO:<b@example.net>").raw.startswith(b"451 4.4.2")
    assert c.cmd("DATA").raw.startswith(b"451 4.4.2")
    assert c.cmd("QUIT").code == 221


def test_backend_lost_after_message_never_250(warden_factory,
                                              capture_factory):
    cap = capture_factory(drop_after="DATA_END")
    w = warden_factory(backend=cap)
    c = SMTPClient(w.port)
    open_tx(c)
    c.cmd("RCPT TO:<b@example.net>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
    r = c.read_reply()
    assert r.raw == b"451 4.4.2 Error: backend connection lost\r\n"
    w.wait_log(r"result=tempfail")


def test_backend_lost_during_client_upload(warden_factory, capture):
    w = warden_factory(backend=capture)
    c = SMTPClient(w.port)
    open_tx(c)
    c.cmd("RCPT TO:<b@example.net>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(b"Subject: x\r\n\r\nfirst part\r\n")
    capture.stop()                      # the backend goes away mid-upload
    time.sleep(0.3)
    c.send(b"second part\r\n.\r\n")
    assert c.read_reply().raw.startswith(b"451 4.4.2")


def test_backend_timeout_is_451(warden_factory, capture_factory):
    cap = capture_factory(reply_delays={"RCPT": 5})
    w = warden_factory({"timeouts": {"backend_reply": "1s"}}, cap)
    c = SMTPClient(w.port)
    open_tx(c)
    r = c.cmd("RCPT TO:<b@example.net>", timeout=5)
    assert r.raw.startswith(b"451 4.4.2")


def test_idle_backend_loss_tells_client(warden_factory, capture):
    w = warden_factory(backend=capture)
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo()
    capture.stop()
    r = c.read_reply(timeout=5)         # unsolicited: we are told at once
    assert r.raw == b"421 4.4.2 warden.test Error: backend connection lost\r\n"
    c.wait_closed()


def test_client_lost_mid_data_backend_gets_nothing(warden_factory, capture):
    w = warden_factory(backend=capture)
    c = SMTPClient(w.port)
    open_tx(c)
    c.cmd("RCPT TO:<b@example.net>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(b"Subject: x\r\n\r\nhalf a message")
    c.close()
    capture.wait_closed(1)
    conn = capture.connections[0]
    assert not any(x.startswith(b"DATA") for x in conn.commands)
    assert capture.messages == []
    w.wait_log(r"result=aborted")


def test_backend_2xx_to_data_is_never_a_250(warden_factory, capture_factory):
    """A backend that answers DATA with 250 took no message: the client
    must not hear 250 for it (promise 1), but a 451 to retry later."""
    cap = capture_factory(replies={"DATA": b"250 2.0.0 sure\r\n"})
    w = warden_factory({}, cap)
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    c.cmd("RCPT TO:<b@example.net>", expect=250)
    r = c.cmd("DATA")
    if r.code == 354:                  # Warden answers 354 itself first
        c.send(b"Subject: x\r\n\r\ny\r\n.\r\n")
        r = c.read_reply()
    assert r.code == 451, r
    assert cap.messages == []
    w.wait_log(r"answered DATA with: 250 2\.0\.0 sure")
    # the session goes on: the next transaction works when the backend does
    c.cmd("NOOP", expect=250)
