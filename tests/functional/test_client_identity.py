"""How the real client reaches the backend: XCLIENT with the attributes the
backend announces, PROXY v1/v2 towards the backend, and PROXY headers
accepted from trusted upstreams only."""

import struct

import pytest

from wardentest import SMTPClient, parse_proxy_header

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(src, dst, sport, dport):
    import socket
    body = socket.inet_aton(src) + socket.inet_aton(dst) + \
        struct.pack("!HH", sport, dport)
    return V2_SIG + b"\x21\x11" + struct.pack("!H", len(body)) + body


def test_xclient_full_set_before_first_command(warden_factory, capture):
    w = warden_factory({"backend": {"client_identity": "xclient"}}, capture)
    c = SMTPClient()
    c.connect(w.port, source=("127.0.0.7", 0))
    c.expect(220)
    c.ehlo("client.example")
    conn = capture.connections[0]
    a = conn.xclient_attrs
    assert a["ADDR"] == "127.0.0.7"
    assert a["PORT"] == str(c.sock.getsockname()[1])
    assert a["HELO"] == "client.example"
    assert a["PROTO"] == "ESMTP"
    assert a["NAME"] == "[UNAVAILABLE]"        # resolve_client is off here
    assert a["LOGIN"] == "[UNAVAILABLE]"     # not authenticated
    assert a["DESTADDR"] == "127.0.0.1"
    assert a["DESTPORT"] == str(w.port)
    assert len(conn.xclient) == 1
    # XCLIENT first, and the client's EHLO only after it (not pipelined)
    cmds = [x for x in conn.commands if not x.startswith(b"EHLO warden")]
    assert cmds[0].startswith(b"XCLIENT ")
    assert cmds[1] == b"EHLO client.example\r\n"
    assert conn.early_data == [] or not any(conn.early_data)


def test_xclient_only_announced_attributes(warden_factory, capture_factory):
    cap = capture_factory(ehlo_caps=[b"PIPELINING", b"XCLIENT ADDR PORT"])
    w = warden_factory({"backend": {"client_identity": "xclient"}}, cap)
    c = SMTPClient(w.port)
    c.expect(220)
    c.ehlo()
    assert set(cap.connections[0].xclient_attrs) == {"ADDR", "PORT"}


def test_xclient_refused_fails_closed(warden_factory, capture_factory):
    cap = capture_factory(replies={
        "XCLIENT": b"550 5.7.0 Error: insufficient authorization"})
    w = warden_factory({"backend": {"client_identity": "xclient"}}, cap)
    c = SMTPClient(w.port)
    c.expect(220)
    c.send(b"EHLO client.example\r\n")
    r = c.read_reply()
    assert r.code == 421
    c.wait_closed()
    w.wait_log(r"refused XCLIENT")


def test_xclient_missing_fails_closed(warden_factory, capture_factory):
    cap = capture_factory(ehlo_caps=[b"PIPELINING"])
    w = warden_factory({"backend": {"client_identity": "xclient"}}, cap)
    c = SMTPClient(w.port)
    c.expect(220)
    c.send(b"MAIL FROM:<a@example.com>\r\n")
    assert c.read_reply().code == 421
    assert not any(x.startswith(b"MAIL") for x in cap.connections[0].commands)


@pytest.mark.parametrize("version", [1, 2])
def test_proxy_header_to_backend(warden_factory, capture_factory, version):
    cap = capture_factory(expect_proxy=version)
    w = warden_factory({"backend": {"client_identity":
                                    "proxy-v%d" % version}}, cap)
    c = SMTPClient()
    c.connect(w.port, source=("127.0.0.9", 0))
    c.expect(220)
    p = cap.connections[0].proxy
    assert p["version"] == version
    assert p["src"] == "127.0.0.9"
    assert p["sport"] == c.sock.getsockname()[1]
    assert p["dst"] == "127.0.0.1" and p["dport"] == w.port


def trusted_listener(trusted):
    return {"listen": [{"name": "lb", "proxy_protocol": True}],
            "trusted_proxies": trusted,
            "backend": {"client_identity": "xclient"}}


@pytest.mark.parametrize("header", [
    b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 25\r\n",
    proxy_v2("192.0.2.10", "198.51.100.1", 40000, 25)], ids=["v1", "v2"])
def test_inbound_proxy_from_trusted(warden_factory, capture, header):
    w = warden_factory(trusted_listener(["127.0.0.0/8"]), capture)
    c = SMTPClient(w.port)
    c.send(header)
    c.expect(220)
    c.ehlo("behind.lb")
    a = capture.connections[0].xclient_attrs
    assert a["ADDR"] == "192.0.2.10" and a["PORT"] == "40000"
    assert a["DESTADDR"] == "198.51.100.1" and a["DESTPORT"] == "25"
    c.cmd("QUIT", expect=221)
    w.wait_log(r"disconnect client=\[192\.0\.2\.10\]:40000")


def test_inbound_proxy_from_untrusted_refused(warden_factory, capture):
    w = warden_factory(trusted_listener(["10.0.0.0/8"]), capture)
    c = SMTPClient(w.port)
    c.send(b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 25\r\n")
    assert c.wait_closed() == b""             # no greeting, no backend
    assert capture.connections == []
    w.wait_log(r"PROXY header expected from a trusted upstream only")


def test_malformed_proxy_header(warden_factory, capture):
    w = warden_factory(trusted_listener(["127.0.0.0/8"]), capture)
    c = SMTPClient(w.port)
    c.send(b"PROXY TCP4 192.0.2.300 198.51.100.1 40000 25\r\n")
    assert c.wait_closed() == b""
    assert capture.connections == []


def test_proxy_line_on_plain_listener_is_not_trusted(warden_factory,
                                                     capture):
    w = warden_factory({"backend": {"client_identity": "xclient"}}, capture)
    c = SMTPClient(w.port)
    c.expect(220)
    c.send(b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 25\r\n")
    assert c.read_reply().code == 502
    c.ehlo()
    assert capture.connections[0].xclient_attrs["ADDR"] == "127.0.0.1"


def test_backend_lost_during_xclient(warden_factory, capture_factory):
    cap = capture_factory(drop_after="XCLIENT")
    w = warden_factory({"backend": {"client_identity": "xclient"}}, cap)
    c = SMTPClient(w.port)
    c.expect(220)
    c.send(b"EHLO client.example\r\n")
    r = c.read_reply()
    assert r.code in (421, 451)
    c.wait_closed()
    assert w.running()


def test_ipv6_client_in_xclient(warden_factory, capture):
    import socket
    from wardentest import free_port
    port = free_port()
    w = warden_factory({"listen": [{"name": "v6",
                                    "address": "[::1]:%d" % port}],
                        "backend": {"client_identity": "xclient"}}, capture)
    s = socket.create_connection(("::1", port), timeout=10)
    c = SMTPClient()
    c.sock = s
    c._buf = bytearray()
    c.expect(220)
    c.ehlo("v6.test")
    a = capture.connections[0].xclient_attrs
    assert a["ADDR"] == "IPV6:::1"
    assert a["PORT"] == str(s.getsockname()[1])
    assert a["DESTADDR"] == "IPV6:::1" and a["DESTPORT"] == str(port)
