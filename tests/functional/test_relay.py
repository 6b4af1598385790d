"""Relaying the SMTP dialogue: banner, EHLO filtering, pipelining, the
commands Warden relays or answers itself, AUTH, and byte-exact DATA."""

import re
import smtplib

from wardentest import SMTPClient, dot_stuff


def session(warden, capture=None):
    c = SMTPClient(warden.port)
    c.expect(220)
    return c


def test_banner_is_the_backends(warden_factory, capture):
    w = warden_factory(backend=capture)
    c = SMTPClient(w.port)
    r = c.expect(220)
    assert r.raw == b"220 backend.test ESMTP capture\r\n"


def test_ehlo_capabilities_filtered(warden_factory, capture_factory):
    cap = capture_factory(ehlo_caps=[
        b"PIPELINING", b"SIZE 20000000", b"8BITMIME", b"SMTPUTF8", b"DSN",
        b"ENHANCEDSTATUSCODES", b"CHUNKING", b"BINARYMIME", b"STARTTLS",
        b"AUTH PLAIN LOGIN", b"XCLIENT NAME ADDR", b"XFORWARD NAME ADDR",
        b"X-SECRET-EXTENSION"])
    w = warden_factory({"limits": {"max_message_size": 5000000}}, cap)
    c = session(w)
    kw = [l.split(b" ")[0] for l in c.ehlo().lines[1:]]
    assert kw[:1] == [b"PIPELINING"]
    for keep in (b"PIPELINING", b"8BITMIME", b"SMTPUTF8", b"DSN",
                 b"ENHANCEDSTATUSCODES", b"AUTH", b"SIZE", b"CHUNKING"):
        assert keep in kw
    # never the backend's STARTTLS (no certificate configured), never
    # XCLIENT/XFORWARD, nor extensions Warden does not relay
    for drop in (b"BINARYMIME", b"STARTTLS", b"XCLIENT",
                 b"XFORWARD", b"X-SECRET-EXTENSION"):
        assert drop not in kw
    assert b"SIZE 5000000" in c.cmd("EHLO again").lines


def test_size_is_the_smaller_limit(warden_factory, capture_factory):
    cap = capture_factory(ehlo_caps=[b"PIPELINING", b"SIZE 1000000"])
    w = warden_factory({"limits": {"max_message_size": "50m"}}, cap)
    c = session(w)
    assert b"SIZE 1000000" in c.ehlo().lines


def test_message_relayed_byte_exact(warden_factory, capture):
    w = warden_factory(backend=capture)
    body = (b"From: a@example.com\r\nTo: b@example.net\r\n"
            b"Subject: exact\r\n\r\n.leading dot\r\n..two dots\r\n"
            b"\xc3\xa9 8bit\r\n\tTab\r\n\r\n.\r\n")
    c = session(w)
    c.ehlo()
    r = c.sendmail("a@example.com", ["b@example.net", "c@example.net"], body)
    assert r.raw == b"250 2.0.0 Ok: queued as TEST\r\n"
    msg = capture.wait_messages(1)[0]
    assert msg == dot_stuff(body)
    t = capture.transactions[0]
    assert t.mail.startswith(b"MAIL FROM:<a@example.com>")
    assert [x.strip() for x in t.rcpts] == [b"RCPT TO:<b@example.net>",
                                            b"RCPT TO:<c@example.net>"]


def test_pipelining_replies_in_order(warden_factory, capture_factory):
    cap = capture_factory(replies={
        "RCPT": lambda conn, line: (b"550 5.1.1 unknown user"
                                    if b"nobody" in line else None)})
    w = warden_factory(backend=cap)
    c = session(w)
    c.ehlo()
    # one packet, several commands: replies come back in the same order
    c.send(b"MAIL FROM:<a@example.com>\r\nBOGUS\r\n"
           b"RCPT TO:<x@example.net>\r\nRCPT TO:<nobody@example.net>\r\n"
           b"RCPT TO:<y@example.net>\r\nDATA\r\n")
    codes = [r.code for r in c.read_replies(6)]
    assert codes == [250, 502, 250, 550, 250, 354]
    c.send(b"Subject: p\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n")
    assert [r.code for r in c.read_replies(4)] == [250, 250, 250, 221]
    t = cap.wait_transactions(1)[0]
    assert len(t.rcpts) == 2          # the refused one is not kept
    assert b"BOGUS" not in cap.connections[0].raw


def test_relayed_and_local_commands(warden_factory, capture):
    w = warden_factory(backend=capture)
    c = session(w)
    c.ehlo()
    for cmd in (b"NOOP", b"HELP", b"VRFY postmaster", b"RSET"):
        c.send(cmd + b"\r\n")
        assert c.read_reply().code in (214, 250, 252, 502)
    conn = capture.connections[0]
    for cmd in (b"NOOP", b"HELP", b"VRFY postmaster", b"RSET"):
        assert cmd + b"\r\n" in conn.commands
    # XCLIENT/XFORWARD from a client are never relayed
    assert c.cmd("XCLIENT ADDR=10.1.2.3").code == 502
    assert c.cmd("XFORWARD ADDR=10.1.2.3").code == 502
    assert c.cmd("WHATEVER").code == 502
    assert not any(x.startswith((b"XCLIENT", b"XFORWARD", b"WHATEVER"))
                   for x in conn.commands)
    assert c.cmd("QUIT").code == 221
    c.wait_closed()


def test_syntax_errors_answered_locally(warden_factory, capture):
    w = warden_factory(backend=capture)
    c = session(w)
    c.ehlo()
    assert c.cmd("MAIL FROM <a@example.com>").raw.startswith(b"501 5.5.4")
    assert c.cmd("MAIL FROM:<a b@example.com>").raw.startswith(b"501 5.1.7")
    assert c.cmd("RCPT TO:<x@example.net>").raw.startswith(b"503 5.5.1")
    assert c.cmd("DATA").raw.startswith(b"503 5.5.1")
    assert c.cmd("EHLO").raw.startswith(b"501 5.5.4")
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    assert c.cmd("MAIL FROM:<a@example.com>").raw.startswith(b"503 5.5.1")
    assert c.cmd("RCPT TO:<broken").raw.startswith(b"501 5.1.3")
    assert not any(b"MAIL FROM <" in x or b"a b@" in x or b"broken" in x
                   for x in capture.connections[0].commands)


def test_auth_relayed_and_user_remembered(warden_factory, capture_factory):
    cap = capture_factory(auth_success_user="alice", auth_password="s3cret")
    w = warden_factory(backend=cap)
    s = smtplib.SMTP("127.0.0.1", w.port, timeout=10)
    s.ehlo("client.test")
    assert s.has_extn("auth")
    s.login("alice", "s3cret")
    s.sendmail("alice@example.com", ["b@example.net"],
               b"Subject: auth\r\n\r\nhi\r\n")
    s.quit()
    w.wait_log(r"authenticated: method=\S+ user=alice")
    line = w.wait_log(r"tx=1 .*auth=alice .*result=sent")
    assert "s3cret" not in w.log()       # never the password


def test_auth_login_exchange(warden_factory, capture_factory):
    cap = capture_factory(auth_success_user="bob", auth_password="pw")
    w = warden_factory(backend=cap)
    c = session(w)
    c.ehlo()
    assert c.cmd("AUTH LOGIN").code == 334
    assert c.cmd("Ym9i").code == 334                  # "bob"
    assert c.cmd("cHc=").code == 235                  # "pw"
    w.wait_log(r"authenticated: method=LOGIN user=bob")
    assert c.cmd("AUTH PLAIN AGJvYgBwdw==").raw.startswith(b"503")


def test_auth_failure_not_remembered(warden_factory, capture_factory):
    cap = capture_factory(auth_success_user="alice", auth_password="right")
    w = warden_factory(backend=cap)
    s = smtplib.SMTP("127.0.0.1", w.port, timeout=10)
    s.ehlo()
    try:
        s.login("alice", "wrong")
        raise AssertionError("login should fail")
    except smtplib.SMTPAuthenticationError as e:
        assert e.smtp_code == 535
    s.quit()
    w.stop()
    assert "authenticated:" not in w.log()


def test_logs_one_line_per_connection_and_transaction(warden_factory,
                                                      capture):
    w = warden_factory(backend=capture)
    c = session(w)
    c.ehlo("logger.test")
    c.sendmail("a@example.com", ["b@example.net"], b"Subject: l\r\n\r\nx\r\n")
    c.cmd("QUIT", expect=221)
    tx = w.wait_log(r"tx=1 client=\[127\.0\.0\.1\]:\d+ helo=<logger\.test> "
                    r"tls=no auth=- from=<a@example\.com> to=<b@example\.net> "
                    r"nrcpt=1 refused_rcpt=0 size=\d+ check=- result=sent "
                    r'reply="250 2\.0\.0 Ok: queued as TEST" delay=')
    w.wait_log(r"disconnect client=\[127\.0\.0\.1\]:\d+ listener=smtp "
               r"helo=<logger\.test> tls=no auth=- commands=\d+ errors=0 "
               r"transactions=1 duration=\S+ reason=quit")
    assert len(re.findall(r" tx=1 ", w.log())) == 1


def test_auth_initial_response_may_exceed_512(warden_factory,
                                              capture_factory):
    import base64
    cap = capture_factory(auth_success_user="carol", auth_password="p" * 600)
    w = warden_factory(backend=cap)
    c = session(w)
    c.ehlo()
    resp = base64.b64encode(b"\0carol\0" + b"p" * 600).decode()
    line = "AUTH PLAIN " + resp
    assert len(line) > 512
    assert c.cmd(line).code == 235
    w.wait_log(r"authenticated: method=PLAIN user=carol")
    # an ordinary command that long is still refused
    assert c.cmd("NOOP " + "x" * 600).raw.startswith(b"500 5.5.2")


def test_reject_log_names_command(warden_factory, capture_factory):
    cap = capture_factory(replies={"RCPT": b"550 5.1.1 unknown user"})
    w = warden_factory(backend=cap)
    c = session(w)
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    c.cmd("RCPT TO:<x@example.net>", expect=550)
    w.wait_log(r"reject: RCPT from \[127\.0\.0\.1\]: 550 5\.1\.1 unknown "
               r"user; from=<a@example\.com> to=<x@example\.net>")


def test_half_closed_client_still_gets_replies(warden_factory, capture):
    """Like `printf ... | nc -N`: the whole dialogue in one write, then the
    client shuts its sending side; every reply still arrives."""
    import socket
    w = warden_factory(backend=capture)
    s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
    s.sendall(b"EHLO script.test\r\nMAIL FROM:<a@example.com>\r\n"
              b"RCPT TO:<b@example.net>\r\nDATA\r\n"
              b"Subject: nc\r\n\r\nhello\r\n.\r\nQUIT\r\n")
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    codes = [l[:3] for l in data.split(b"\r\n") if l[3:4] == b" "]
    assert codes == [b"220", b"250", b"250", b"250", b"354", b"250", b"221"]
    assert capture.wait_messages(1)[0] == b"Subject: nc\r\n\r\nhello\r\n"
