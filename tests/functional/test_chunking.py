"""CHUNKING (RFC 3030): BDAT relayed to a backend that takes it. Chunks
are policed like DATA (no bare LF/CR/NUL in strict mode), spooled, and
sent on after BDAT LAST as one BDAT whose reply is the final one."""

from wardentest import SMTPClient

BODY = b"Subject: chunks\r\n\r\nline one\r\n.\r\n..dots stay\r\nlast line\r\n"


def ready(w):
    c = SMTPClient(w.port)
    c.expect(220)
    kw = [l.split(b" ")[0] for l in c.ehlo().lines[1:]]
    return c, kw


def open_tx(c):
    c.cmd("MAIL FROM:<a@example.com>", expect=250)
    c.cmd("RCPT TO:<b@example.net>", expect=250)


def test_bdat_chunks_relayed_byte_exact(warden_factory, capture):
    w = warden_factory(backend=capture)
    c, kw = ready(w)
    assert b"CHUNKING" in kw
    open_tx(c)
    first, rest = BODY[:20], BODY[20:]
    c.send(b"BDAT %d\r\n" % len(first) + first)
    assert c.read_reply().raw == b"250 2.0.0 Ok: 20 octets\r\n"
    assert capture.messages == []               # nothing until LAST
    c.send(b"BDAT %d LAST\r\n" % len(rest) + rest)
    assert c.read_reply().raw == b"250 2.0.0 Ok: queued as TEST\r\n"
    t = capture.wait_transactions(1)[0]
    assert t.bdat and t.data == BODY            # raw: no dot-stuffing
    assert c.cmd("NOOP").code == 250


def test_bdat_pipelined_with_envelope(warden_factory, capture):
    w = warden_factory(backend=capture)
    c, _ = ready(w)
    c.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\n"
           b"BDAT %d LAST\r\n" % len(BODY) + BODY + b"QUIT\r\n")
    assert [r.code for r in c.read_replies(4)] == [250, 250, 250, 221]
    assert capture.wait_transactions(1)[0].data == BODY


def test_bdat_zero_last(warden_factory, capture):
    w = warden_factory(backend=capture)
    c, _ = ready(w)
    open_tx(c)
    c.send(b"BDAT %d\r\n" % len(BODY) + BODY + b"BDAT 0 LAST\r\n")
    assert [r.code for r in c.read_replies(2)] == [250, 250]
    assert capture.wait_transactions(1)[0].data == BODY


def test_bdat_bare_lf_refused(warden_factory, capture):
    w = warden_factory(backend=capture)
    c, _ = ready(w)
    open_tx(c)
    bad = b"Subject: x\r\n\r\nbare\nline\r\n"
    c.send(b"BDAT %d LAST\r\n" % len(bad) + bad)
    assert c.read_reply().raw == b"550 5.5.2 Error: bare <LF> received\r\n"
    assert c.cmd("NOOP").code == 250
    assert capture.transactions == []
    assert not any(x.startswith(b"BDAT") for x in
                   capture.connections[0].commands)


def test_bdat_without_transaction_discards_chunk(warden_factory, capture):
    w = warden_factory(backend=capture)
    c, _ = ready(w)
    junk = b"MAIL FROM:<evil@example.com>\r\n"   # must not run as a command
    c.send(b"BDAT %d\r\n" % len(junk) + junk)
    assert c.read_reply().raw.startswith(b"503 5.5.1")
    assert c.cmd("NOOP").code == 250
    assert b"evil" not in capture.connections[0].raw


def test_bdat_not_offered_without_backend_chunking(warden_factory,
                                                  capture_factory):
    cap = capture_factory(ehlo_caps=[b"PIPELINING", b"SIZE 1000000"])
    w = warden_factory(backend=cap)
    c, kw = ready(w)
    assert b"CHUNKING" not in kw
    open_tx(c)
    c.send(b"BDAT 5 LAST\r\nhello")
    assert c.read_reply().raw.startswith(b"502 5.5.1")
    assert c.cmd("RSET").code == 250


def test_bdat_syntax_error_closes(warden_factory, capture):
    w = warden_factory(backend=capture)
    c, _ = ready(w)
    open_tx(c)
    c.send(b"BDAT lots\r\n")
    assert c.read_reply().raw.startswith(b"501 5.5.4")
    c.wait_closed()


def test_data_after_bdat_refused(warden_factory, capture):
    w = warden_factory(backend=capture)
    c, _ = ready(w)
    open_tx(c)
    c.send(b"BDAT 3\r\nabc")
    c.expect(250)
    assert c.cmd("DATA").raw.startswith(b"503 5.5.1")


def test_bdat_over_size_limit(warden_factory, capture):
    w = warden_factory({"limits": {"max_message_size": 100}}, capture)
    c, _ = ready(w)
    open_tx(c)
    c.send(b"BDAT 200 LAST\r\n" + b"x" * 200)
    assert c.read_reply().raw.startswith(b"552 5.3.4")
    assert capture.transactions == []
