"""SMTP smuggling (CVE-2023-51764 class): only CRLF.CRLF ends DATA.

Each published end-of-data variant is sent inside a message, followed by
a smuggled second transaction. Strict mode (the default) refuses the
message with 550 and the backend never sees DATA; normalize mode turns
stray CR/LF into CRLF and dot-stuffs, so the backend receives one
message, containing the smuggled text as content.
"""

import pytest

from wardentest import SMTPClient

VARIANTS = [b"\n.\n", b"\n.\r", b"\r.\n", b"\r.\r", b"\n.\r\n", b"\r.\r\n",
            b"\r\n.\n", b"\r\n.\r", b"\r\n\x00.\r\n"]

SMUGGLED = (b"MAIL FROM:<admin@bank.example>\r\nRCPT TO:<victim@example.net>"
            b"\r\nDATA\r\nFrom: admin@bank.example\r\n\r\nsmuggled\r\n")


def open_tx(w):
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    c.cmd("RCPT TO:<b@example.net>", expect=250)
    c.cmd("DATA", expect=354)
    return c


@pytest.mark.parametrize("variant", VARIANTS, ids=repr)
def test_strict_refuses(warden_factory, capture, variant):
    w = warden_factory(backend=capture)
    c = open_tx(w)
    c.send(b"Subject: s\r\n\r\nhello" + variant + SMUGGLED + b".\r\n")
    r = c.read_reply()
    assert r.code == 550 and r.raw.startswith(b"550 5.")
    # the session goes on; the backend saw no DATA and no smuggled MAIL
    assert c.cmd("NOOP").code == 250
    conn = capture.connections[0]
    assert not any(x.startswith(b"DATA") for x in conn.commands)
    assert b"admin@bank" not in conn.raw
    assert capture.messages == []
    assert any(x == b"RSET\r\n" for x in conn.commands)


@pytest.mark.parametrize("variant", VARIANTS, ids=repr)
def test_normalize_delivers_one_clean_message(warden_factory, capture,
                                              variant):
    w = warden_factory({"smtp": {"bare_newline": "normalize"}}, capture)
    c = open_tx(w)
    c.send(b"Subject: s\r\n\r\nhello" + variant + SMUGGLED + b".\r\n")
    assert c.read_reply().code == 250
    c.cmd("QUIT", expect=221)
    msgs = capture.wait_messages(1)
    assert len(msgs) == 1
    msg = msgs[0]
    # clean CRLF framing: no stray CR, LF or NUL left
    assert b"\x00" not in msg
    assert msg.replace(b"\r\n", b"").count(b"\r") == 0
    assert msg.replace(b"\r\n", b"").count(b"\n") == 0
    # the smuggled transaction arrived as content of the one message
    assert b"MAIL FROM:<admin@bank.example>" in msg
    assert len(capture.transactions) == 1
    assert b"admin@bank" not in b"".join(
        x for x in capture.connections[0].commands)


def test_normalize_dot_stuffs_new_lines(warden_factory, capture):
    w = warden_factory({"smtp": {"bare_newline": "normalize"}}, capture)
    c = open_tx(w)
    c.send(b"Subject: s\r\n\r\na\n.b\n.\nc\r\n.\r\n")
    assert c.read_reply().code == 250
    msg = capture.wait_messages(1)[0]
    assert msg == b"Subject: s\r\n\r\na\r\n..b\r\n..\r\nc\r\n"


def test_bare_lf_in_command(warden_factory, capture):
    w = warden_factory(backend=capture)
    c = SMTPClient(w.port)
    c.expect(220)
    c.send(b"EHLO x\nMAIL FROM:<a@example.com>\r\n")
    assert c.read_reply().raw == b"500 5.5.2 Error: bare <LF> received\r\n"
    assert c.read_reply().code == 250
    assert not any(x.startswith(b"EHLO x\n") for x in
                   capture.connections[0].commands)


def test_nul_in_data_refused_strict(warden_factory, capture):
    w = warden_factory(backend=capture)
    c = open_tx(w)
    c.send(b"Subject: n\r\n\r\nnul\x00byte\r\n.\r\n")
    assert c.read_reply().raw.startswith(b"550 5.6.0")
    assert capture.messages == []
