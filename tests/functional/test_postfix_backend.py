"""A real Postfix 3.7 as the backend (own config dir and queue, on
loopback): Postfix sees the real client address through XCLIENT or the
PROXY protocol, its replies reach the client, and mail arrives at its
relay sink. Postfix runs with smtpd_forbid_unauth_pipelining = yes, so
any pipelining violation by Warden would drop the session."""

import pytest

from wardentest import SMTPClient

STRICT = {"smtpd_forbid_unauth_pipelining": "yes",
          "smtpd_forbid_bare_newline": "reject"}


def send_one(port, source, subject):
    c = SMTPClient()
    c.connect(port, source=(source, 0))
    c.expect(220)
    c.ehlo("client.example")
    r = c.sendmail("sender@example.com", ["rcpt@example.net"],
                   b"Subject: " + subject + b"\r\n\r\nhello\r\n")
    c.cmd("QUIT", expect=221)
    return r


def test_xclient_postfix_sees_real_client(warden_factory, postfix_factory):
    pf = postfix_factory(**STRICT)
    w = warden_factory({"backend": {"client_identity": "xclient"}}, pf)
    r = send_one(w.port, "127.0.0.23", b"via xclient")
    assert r.code == 250 and b"queued as" in r.raw
    pf.wait_log(r"client=unknown\[127\.0\.0\.23\]")
    msg = pf.sink.wait_messages(1, timeout=30)[0]
    assert b"Subject: via xclient" in msg
    # Postfix's Received: header names the client's HELO and address
    assert b"from client.example (unknown [127.0.0.23])" in msg
    assert "improper command pipelining" not in pf.maillog()


@pytest.mark.parametrize("version", [1, 2])
def test_proxy_protocol_postfix_sees_real_client(warden_factory,
                                                 postfix_factory, version):
    pf = postfix_factory(proxy_protocol=True, **STRICT)
    w = warden_factory({"backend": {"client_identity":
                                    "proxy-v%d" % version}}, pf)
    r = send_one(w.port, "127.0.0.%d" % (30 + version), b"via proxy")
    assert r.code == 250
    pf.wait_log(r"client=unknown\[127\.0\.0\.%d\]" % (30 + version))
    assert b"Subject: via proxy" in pf.sink.wait_messages(1, timeout=30)[0]


def test_postfix_refusal_reaches_client(warden_factory, postfix_factory):
    pf = postfix_factory(smtpd_relay_restrictions="reject_unauth_destination",
                         mynetworks="127.0.0.254/32", **STRICT)
    w = warden_factory({"backend": {"client_identity": "xclient"}}, pf)
    c = SMTPClient()
    c.connect(w.port, source=("127.0.0.40", 0))
    c.expect(220)
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    r = c.cmd("RCPT TO:<someone@elsewhere.example>")
    assert r.code == 554 and b"Relay access denied" in r.raw
    assert c.cmd("RCPT TO:<ok@example.net>").code == 250
    w.wait_log(r"reject: RCPT from \[127\.0\.0\.40\]: 554")


def test_bare_lf_never_reaches_postfix(warden_factory, postfix_factory):
    pf = postfix_factory(**STRICT)
    w = warden_factory({"backend": {"client_identity": "xclient"}}, pf)
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    c.cmd("RCPT TO:<b@example.net>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(b"Subject: s\r\n\r\nx\n.\nMAIL FROM:<evil@example.com>\r\n.\r\n")
    assert c.read_reply().code == 550
    assert c.sendmail("a@example.com", "b@example.net",
                      b"Subject: clean\r\n\r\nok\r\n").code == 250
    msgs = pf.sink.wait_messages(1, timeout=30)
    assert len(msgs) == 1 and b"Subject: clean" in msgs[0]
    assert "evil@example.com" not in pf.maillog()


def test_starttls_towards_postfix(warden_factory, postfix_factory, tls_cert):
    cert, key = tls_cert
    pf = postfix_factory(smtpd_tls_cert_file=cert, smtpd_tls_key_file=key,
                         smtpd_tls_security_level="may",
                         smtpd_tls_loglevel="1", **STRICT)
    w = warden_factory({"backend": {"client_identity": "xclient",
                                    "starttls": "require"}}, pf)
    r = send_one(w.port, "127.0.0.50", b"tls to backend")
    assert r.code == 250
    pf.wait_log(r"TLS connection established from")
    pf.wait_log(r"client=unknown\[127\.0\.0\.50\]")


def test_bdat_through_to_postfix(warden_factory, postfix_factory):
    pf = postfix_factory(**STRICT)
    w = warden_factory({"backend": {"client_identity": "xclient"}}, pf)
    c = SMTPClient(w.port)
    c.expect(220)
    assert b"CHUNKING" in c.ehlo().lines
    body = b"Subject: via bdat\r\n\r\n.\r\nstill the body\r\n"
    c.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n"
           b"BDAT %d LAST\r\n" % len(body) + body)
    codes = [r.code for r in c.read_replies(3)]
    assert codes == [250, 250, 250]
    msg = pf.sink.wait_messages(1, timeout=30)[0]
    assert b"Subject: via bdat" in msg and b"still the body" in msg
