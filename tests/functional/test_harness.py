"""Self-tests of the functional-test harness (wardentest.py).

None of these needs the warden binary: they check that the fake backend
records bytes exactly, that the raw client parses replies, that the
Warden wrapper manages a process, and that a private Postfix starts,
relays, and honours XCLIENT and the PROXY protocol.
"""

import base64
import os
import smtplib
import socket
import stat
import struct
import textwrap

import pytest

import wardentest as wt


# --- CaptureBackend ---------------------------------------------------------

def test_capture_records_smtplib_message_byte_exact(capture):
    msg = (b"From: a@test.org\r\nTo: b@example.com\r\nSubject: exact\r\n"
           b"\r\n.leading dot\r\nline with trailing space \r\n"
           b"\xc3\xa9 8bit\r\n")
    with smtplib.SMTP(wt.LOCALHOST, capture.port, timeout=10) as s:
        s.sendmail("a@test.org", ["b@example.com", "c@example.com"], msg)
    (data,) = capture.wait_messages(1)
    assert data == msg.replace(b"\r\n.leading", b"\r\n..leading")
    assert wt.dot_unstuff(data) == msg
    capture.wait_closed(1)
    conn = capture.connections[0]
    verbs = [c.split(b" ")[0].rstrip(b"\r\n") for c in conn.commands]
    assert verbs == [b"ehlo", b"mail", b"rcpt", b"rcpt", b"data", b"QUIT"]
    assert all(c.endswith(b"\r\n") for c in conn.commands)
    tx = capture.transactions[0]
    assert tx.mail.startswith(b"mail FROM:<a@test.org>")
    assert [r.split(b">")[0] for r in tx.rcpts] == [
        b"rcpt TO:<b@example.com", b"rcpt TO:<c@example.com"]
    assert conn.early_data == [False]
    assert msg.replace(b"\r\n.l", b"\r\n..l") in conn.raw


def test_capture_only_crlf_dot_crlf_ends_data(capture, smtp_client):
    c = smtp_client(capture.port)
    c.expect(220)
    ehlo = c.ehlo()
    assert ehlo.lines[0] == b"backend.test"
    assert b"PIPELINING" in ehlo.lines and b"CHUNKING" in ehlo.lines
    assert ehlo.raw.endswith(
        b"250 XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT\r\n")
    # Smuggling-style pseudo ends inside the data must not end it.
    body = (b"Subject: smuggle\r\n\r\nline1\n.\nMAIL FROM:<evil@x>\r\n"
            b"x\r.\r\ny\r\n.\rz\r\n\x00.\r\n..stuffed\r\nlast\r\n")
    c.sendmail("a@test.org", "b@example.com", body, stuff=False)
    # Empty message: ".\r\n" right after 354.
    c.cmd("MAIL FROM:<a@test.org>", expect=250)
    c.cmd("RCPT TO:<b@example.com>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(b".\r\n")
    c.expect(250)
    c.cmd("QUIT", expect=221)
    assert c.wait_closed() == b""
    assert capture.wait_messages(2) == [body, b""]
    conn = capture.connections[0]
    assert not any(b"evil" in line for line in conn.commands)
    assert conn.messages == [body, b""]


def test_capture_pipelined_group_and_early_data(capture, smtp_client):
    c = smtp_client(capture.port)
    c.expect(220)
    c.ehlo()
    c.send(b"MAIL FROM:<a@test.org>\r\nRCPT TO:<b@example.com>\r\n"
           b"RCPT TO:<c@example.com>\r\nDATA\r\nSubject: p\r\n\r\nhi\r\n"
           b".\r\nRSET\r\n")
    codes = [r.code for r in c.read_replies(6)]
    assert codes == [250, 250, 250, 354, 250, 250]
    assert capture.wait_messages(1) == [b"Subject: p\r\n\r\nhi\r\n"]
    # Content was sent before the 354: the backend notices.
    assert capture.connections[0].early_data == [True]


def test_capture_scripted_replies_and_drop(capture_factory, smtp_client):
    b = capture_factory(
        replies={"RCPT": [b"550 5.1.1 no such user"],
                 "MAIL": lambda conn, line: b"452 4.3.1 full"
                 if b"full@" in line else None},
        drop_after="NOOP", final_reply=b"250 2.0.0 Ok: queued as X1")
    c = smtp_client(b.port)
    c.expect(220)
    c.cmd("EHLO x", expect=250)
    c.cmd("MAIL FROM:<full@test.org>", expect=452)
    c.cmd("MAIL FROM:<a@test.org>", expect=250)
    r = c.cmd("RCPT TO:<nobody@example.com>", expect=550)
    assert r.lines == [b"5.1.1 no such user"]
    c.cmd("DATA", expect=554)                 # no valid recipient yet
    c.cmd("RCPT TO:<b@example.com>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(b"x\r\n.\r\n")
    assert c.expect(250).raw == b"250 2.0.0 Ok: queued as X1\r\n"
    c.cmd("STARTTLS", expect=454)
    c.send(b"NOOP\r\n")
    with pytest.raises(wt.SMTPClosed):
        c.read_reply()
    b.wait_closed(1)


def test_capture_drop_after_data_end_and_delays(capture_factory,
                                                smtp_client):
    b = capture_factory(drop_after="DATA_END", greeting_delay=0.2)
    c = smtp_client(b.port)
    c.expect(220)
    c.cmd("HELO x", expect=250)
    c.cmd("MAIL FROM:<a@test.org>", expect=250)
    c.cmd("RCPT TO:<b@example.com>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(b"hi\r\n.\r\n")
    assert c.wait_closed() == b""
    assert b.wait_messages(1) == [b"hi\r\n"]


def test_capture_auth_xclient_bdat(capture_factory, smtp_client):
    b = capture_factory(auth_success_user="alice", auth_password="pw")
    c = smtp_client(b.port)
    c.expect(220)
    c.ehlo()
    bad = base64.b64encode(b"\0alice\0wrong").decode()
    c.cmd("AUTH PLAIN " + bad, expect=535)
    c.cmd("AUTH LOGIN", expect=334)
    c.cmd(base64.b64encode(b"alice"), expect=334)
    c.cmd(base64.b64encode(b"pw"), expect=235)
    r = c.cmd("XCLIENT ADDR=192.0.2.7 NAME=[UNAVAILABLE]", expect=220)
    assert r.raw == b"220 backend.test ESMTP\r\n"
    c.ehlo()
    c.cmd("MAIL FROM:<a@test.org>", expect=250)
    c.cmd("RCPT TO:<b@example.com>", expect=250)
    c.send(b"BDAT 5\r\nab\r\ncBDAT 3 LAST\r\nd\r\n")
    assert [r.code for r in c.read_replies(2)] == [250, 250]
    conn = b.wait_connections(1)[0]
    assert conn.auth_user == "alice"
    assert conn.xclient == [b"XCLIENT ADDR=192.0.2.7 NAME=[UNAVAILABLE]\r\n"]
    assert conn.xclient_attrs == {"ADDR": "192.0.2.7",
                                  "NAME": "[UNAVAILABLE]"}
    assert b.wait_messages(1) == [b"ab\r\ncd\r\n"]
    assert b.transactions[0].bdat


def test_capture_proxy_v1_header(capture_factory, smtp_client):
    b = capture_factory(expect_proxy=1)
    c = smtp_client(b.port)
    header = b"PROXY TCP4 192.0.2.1 127.0.0.1 5555 25\r\n"
    c.send(header + b"EHLO x\r\n")
    c.expect(220)
    c.expect(250)
    conn = b.wait_connections(1)[0]
    assert conn.proxy_header == header
    assert conn.proxy == {"version": 1, "command": "PROXY", "family": "TCP4",
                          "src": "192.0.2.1", "dst": "127.0.0.1",
                          "sport": 5555, "dport": 25}
    assert conn.commands == [b"EHLO x\r\n"]
    assert conn.raw.startswith(header)


def test_capture_proxy_v2_header(capture_factory, smtp_client):
    b = capture_factory(expect_proxy=2)
    body = socket.inet_aton("198.51.100.9") + socket.inet_aton("127.0.0.1") \
        + struct.pack("!HH", 40000, 25)
    header = wt.PROXY_V2_SIG + bytes([0x21, 0x11]) + \
        struct.pack("!H", len(body)) + body
    c = smtp_client(b.port)
    c.send(header)
    c.expect(220)
    conn = b.wait_connections(1)[0]
    assert conn.proxy_header == header
    assert conn.proxy["src"] == "198.51.100.9"
    assert conn.proxy["sport"] == 40000


def test_capture_without_proxy_header_closes(capture_factory, smtp_client):
    b = capture_factory(expect_proxy=1, proxy_timeout=5)
    c = smtp_client(b.port)
    c.send(b"EHLO no-header-here\r\n")
    assert c.wait_closed() == b""
    assert b.connections[0].proxy_header is None


# --- helpers ----------------------------------------------------------------

def test_dump_yaml_round_trips():
    yaml = pytest.importorskip("yaml")
    cfg = {"hostname": "warden.test",
           "listen": [{"name": "smtp", "address": "127.0.0.1:2525",
                       "tls": "none", "proxy_protocol": False},
                      {"address": "[::1]:465", "tls": "implicit"}],
           "backend": {"address": ["127.0.0.1:1", "127.0.0.1:2"],
                       "client_identity": "none"},
           "trusted_proxies": [], "tls": {}, "size": 10240000,
           "odd": ["yes", "no", "", "a: b", "#x", "1.5", None, True],
           "nested": [[1, 2], {"k": "v"}]}
    assert yaml.safe_load(wt.dump_yaml(cfg)) == cfg


def test_dot_stuffing_helpers():
    assert wt.dot_stuff(b".a\r\nb\r\n.\r\n..c\r\n") == \
        b"..a\r\nb\r\n..\r\n...c\r\n"
    assert wt.dot_unstuff(wt.dot_stuff(b".x\r\n.\r\n")) == b".x\r\n.\r\n"
    assert wt.dot_stuff(b"a\n.b\r\n") == b"a\n.b\r\n"   # CRLF lines only


FAKE_WARDEN = textwrap.dedent("""\
    #!/usr/bin/python3
    # Stands in for warden: listens where the config says, logs, exits
    # on SIGTERM; "-t" prints a verdict. FAIL in the config: exit 1.
    import re, signal, socket, sys
    path = sys.argv[sys.argv.index("-c") + 1]
    text = open(path).read()
    if "-t" in sys.argv:
        print("checked " + path); sys.exit(3 if "bad" in text else 0)
    if "FAIL" in text:
        print("fatal: config says FAIL", file=sys.stderr); sys.exit(1)
    port = int(re.search(r"address: 127.0.0.1:(\\d+)", text).group(1))
    s = socket.socket(); s.bind(("127.0.0.1", port)); s.listen()
    print("listening on", port, flush=True)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    signal.signal(signal.SIGHUP, lambda *a: print("reload: ok",
                                                     flush=True))
    while True:
        signal.pause()
    """)


@pytest.fixture
def fake_warden(tmp_path):
    path = tmp_path / "fake-warden"
    path.write_text(FAKE_WARDEN)
    path.chmod(stat.S_IRWXU)
    return str(path)


def test_warden_wrapper_with_fake_binary(fake_warden, capture):
    w = wt.Warden({"log": {"level": "info"}, "limits": {"max_errors": 3}},
                  capture, bin_path=fake_warden)
    try:
        assert w.running()
        assert wt.port_listening(w.port)
        assert w.config["backend"] == {"client_identity": "none",
                                       "address": capture.address}
        assert w.config["log"] == {"target": "stderr", "level": "info"}
        assert w.config["dns"] == {"resolve_client": False}
        w.wait_log(r"listening on %d" % w.port)
        assert w.reload({"log": {"level": "debug"}}).group(1) == ": ok"
        assert w.config["log"]["level"] == "debug"
        assert wt.port_listening(w.port)
        assert w.check_config({"bad": 1})[0] == 3
        rc, out = w.check_config("listen: []\n")
        assert rc == 0 and out.startswith("checked ")
        d = w.dir
    finally:
        assert w.stop() == 0
    assert not os.path.exists(d)
    assert "reload: ok" in w.log()       # the log outlives the directory
    assert capture.connections == []      # waiting never probed the port


def test_warden_wrapper_reports_death_at_start(fake_warden):
    with pytest.raises(RuntimeError, match="config says FAIL"):
        wt.Warden({"hostname": "FAIL"}, 25, bin_path=fake_warden)


# --- Postfix ----------------------------------------------------------------

def test_postfix_relays_to_sink(postfix):
    msg = (b"From: a@test.org\r\nTo: b@example.com\r\n"
           b"Subject: harness relay test\r\n\r\nbody\r\n")
    with smtplib.SMTP(wt.LOCALHOST, postfix.port, timeout=10) as s:
        s.sendmail("a@test.org", ["b@example.com"], msg)
    (data,) = postfix.sink.wait_messages(1, timeout=20)
    assert b"\r\nSubject: harness relay test\r\n" in data
    assert data.startswith(b"Received: from ")
    assert data.endswith(b"\r\n\r\nbody\r\n")
    postfix.wait_log(r"status=sent")
    tx = postfix.sink.transactions[0]
    assert tx.mail.startswith(b"MAIL FROM:<a@test.org>")
    assert tx.rcpts[0].startswith(b"RCPT TO:<b@example.com>")


def _raw_message(c, subject):
    c.cmd("MAIL FROM:<a@test.org>", expect=250)
    c.cmd("RCPT TO:<b@example.com>", expect=250)
    c.cmd("DATA", expect=354)
    c.send(b"Subject: " + subject + b"\r\n\r\nhello\r\n.\r\n")
    c.expect(250)
    c.cmd("QUIT", expect=221)


def test_postfix_honours_xclient_from_loopback(postfix, smtp_client):
    c = smtp_client(postfix.port)
    c.expect(220)
    assert any(l.startswith(b"XCLIENT") for l in c.ehlo().lines)
    c.cmd("XCLIENT ADDR=192.0.2.7 NAME=[UNAVAILABLE]", expect=220)
    c.ehlo()
    _raw_message(c, b"xclient")
    postfix.wait_log(r"client=unknown\[192\.0\.2\.7\]")
    (data,) = postfix.sink.wait_messages(1, timeout=20)
    assert b"192.0.2.7" in data.split(b"\r\n\r\n")[0]   # Received header


def test_postfix_proxy_protocol_variant(postfix_factory, smtp_client):
    pf = postfix_factory(proxy_protocol=True)
    c = smtp_client(pf.port)
    c.send(b"PROXY TCP4 192.0.2.8 127.0.0.1 40000 25\r\n")
    c.expect(220)
    c.ehlo()
    _raw_message(c, b"proxy")
    pf.wait_log(r"connect from unknown\[192\.0\.2\.8\]")
    pf.wait_log(r"client=unknown\[192\.0\.2\.8\]")
    assert pf.sink.wait_messages(1, timeout=20)


def test_postfix_instance_cleans_up(postfix_factory):
    pf = postfix_factory(main_cf={"smtpd_client_restrictions":
                                  ["permit_mynetworks", "reject"]},
                         smtpd_forbid_bare_newline="reject")
    assert pf.postconf("-h", "smtpd_client_restrictions").strip() == \
        "permit_mynetworks, reject"
    assert pf.postconf("-h", "smtpd_forbid_bare_newline").strip() == \
        "reject"
    conf = pf.config_dir
    with open(wt.DEFAULT_MAIN_CF) as f:
        assert conf in f.read()
    pf.stop()
    assert not os.path.exists(pf.dir)
    with open(wt.DEFAULT_MAIN_CF) as f:
        assert conf not in f.read()
    assert not wt.port_listening(pf.port)


def test_client_starttls_against_postfix(postfix_factory, smtp_client,
                                         tls_cert):
    cert, key = tls_cert
    pf = postfix_factory(smtpd_tls_security_level="may",
                         smtpd_tls_cert_file=cert, smtpd_tls_key_file=key)
    c = smtp_client(pf.port)
    c.expect(220)
    assert b"STARTTLS" in c.ehlo().lines
    tls = c.starttls()
    assert tls.version().startswith("TLS")
    assert b"STARTTLS" not in c.ehlo().lines
    _raw_message(c, b"over tls")
    pf.wait_log(r"disconnect from .* starttls=1 mail=1")
    assert pf.sink.wait_messages(1, timeout=20)
