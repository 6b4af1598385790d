"""STARTTLS terminated at Warden: offered only with a certificate, AUTH
hidden before TLS, pipelined plaintext after STARTTLS discarded
(CVE-2011-0411), implicit TLS listeners, and openssl s_client as an
independent client."""

import os
import signal
import ssl
import subprocess
import time

from wardentest import SMTPClient


def tls_warden(warden_factory, backend, tls_cert, **extra):
    cert, key = tls_cert
    cfg = {"tls": {"certificate": cert, "key": key},
           "listen": [{"name": "submission", "tls": "starttls"}]}
    cfg.update(extra)
    return warden_factory(cfg, backend)


def test_starttls_offered_and_auth_after_tls(warden_factory, capture,
                                            tls_cert):
    w = tls_warden(warden_factory, capture, tls_cert)
    c = SMTPClient(w.port)
    c.expect(220)
    caps = [l.split(b" ")[0] for l in c.ehlo().lines[1:]]
    assert b"STARTTLS" in caps and b"AUTH" not in caps
    assert c.cmd("AUTH PLAIN AGEAYg==").raw.startswith(b"538 5.7.11")
    c.starttls()
    caps = [l.split(b" ")[0] for l in c.ehlo().lines[1:]]
    assert b"STARTTLS" not in caps and b"AUTH" in caps
    assert c.cmd("STARTTLS").raw.startswith(b"554 5.5.1")
    r = c.sendmail("a@example.com", "b@example.net", b"Subject: tls\r\n\r\nx")
    assert r.code == 250
    w.wait_log(r"tls=TLSv1\.[23]:")


def test_plaintext_pipelined_after_starttls_discarded(warden_factory,
                                                     capture, tls_cert):
    w = tls_warden(warden_factory, capture, tls_cert)
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo()
    # the injection: commands glued to STARTTLS in the same packet
    c.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
    assert c.read_reply().code == 220
    c.starttls(send_command=False)
    c.ehlo()
    r = c.cmd("MAIL FROM:<a@example.com>")
    assert r.code == 250          # not 503 "nested MAIL": nothing injected
    raw = capture.connections[0].raw
    assert b"injected" not in raw
    w.wait_log(r"discarded \d+ bytes pipelined after STARTTLS")


def test_no_starttls_without_certificate(warden_factory, capture):
    w = warden_factory(backend=capture)
    c = SMTPClient(w.port)
    c.expect(220)
    assert b"STARTTLS" not in c.ehlo().lines
    assert c.cmd("STARTTLS").raw.startswith(b"502 5.5.1")


def test_openssl_s_client(warden_factory, capture, tls_cert):
    w = tls_warden(warden_factory, capture, tls_cert)
    script = (b"EHLO sclient.test\r\nMAIL FROM:<a@example.com>\r\n"
              b"RCPT TO:<b@example.net>\r\nDATA\r\n"
              b"Subject: s_client\r\n\r\nhello\r\n.\r\nQUIT\r\n")
    p = subprocess.run(
        ["openssl", "s_client", "-starttls", "smtp", "-quiet",
         "-connect", "127.0.0.1:%d" % w.port, "-ign_eof"],
        input=script, capture_output=True, timeout=20)
    assert b"250 2.0.0 Ok: queued as TEST" in p.stdout, p.stderr
    assert capture.wait_messages(1)[0].startswith(b"Subject: s_client")
    # the reply to QUIT, then close_notify: no "unexpected eof" from the
    # client's TLS layer
    assert p.stdout.rstrip().endswith(b"221 2.0.0 Bye"), p.stdout[-200:]
    assert b"unexpected eof" not in p.stderr, p.stderr


def test_implicit_tls_listener(warden_factory, capture, tls_cert):
    cert, key = tls_cert
    w = warden_factory({"tls": {"certificate": cert, "key": key},
                        "listen": [{"name": "smtps", "tls": "implicit"}]},
                       capture)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = SMTPClient()
    c.connect(w.port)
    c.starttls(ctx, send_command=False)
    c.expect(220)
    assert b"STARTTLS" not in c.ehlo().lines
    assert c.sendmail("a@example.com", "b@example.net",
                      b"Subject: 465\r\n\r\nx").code == 250


def test_bad_handshake_closes_cleanly(warden_factory, capture, tls_cert):
    w = tls_warden(warden_factory, capture, tls_cert)
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo()
    c.cmd("STARTTLS", expect=220)
    c.send(b"this is not a TLS client hello\r\n" * 4)
    c.wait_closed()
    # the daemon is fine
    d = SMTPClient(w.port)
    d.expect(220)


def test_tls_session_survives_stalled_loop(warden_factory, capture, tls_cert):
    """A deadline that passes while Warden's loop is stalled (SIGSTOP here:
    overload or a VM pause) drops only a TLS client that really sent
    nothing, as on plain connections: one whose command arrived in time is
    answered. And QUIT over TLS gets its 221 (with close_notify) before
    the connection closes."""
    w = tls_warden(warden_factory, capture, tls_cert,
                   timeouts={"command": "2s"})
    prompt, idle = SMTPClient(w.port), SMTPClient(w.port)
    for c in (prompt, idle):
        c.expect(220)
        c.ehlo()
        c.starttls()
        c.ehlo()
    time.sleep(0.2)
    w.pause()
    try:
        prompt.send(b"NOOP\r\n")
        time.sleep(3)
    finally:
        w.signal(signal.SIGCONT)
    assert prompt.read_reply(timeout=5).code == 250
    assert prompt.cmd("QUIT").code == 221
    prompt.wait_closed(timeout=5)
    r = idle.read_reply(timeout=5)
    assert r.code == 421 and b"timeout" in r.raw, r.raw
    assert w.log().count("timeout in state") == 1, w.log()[-3000:]
