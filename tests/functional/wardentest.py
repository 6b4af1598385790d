"""
wardentest: a harness for Warden's functional tests.

Every peer here is a real process or a real socket on 127.0.0.1:

- ``CaptureBackend``: a scriptable fake SMTP server (a thread) that records
  the exact bytes each connection sends, so tests can prove what Warden
  forwarded (commands, message bytes, PROXY headers, XCLIENT lines).
- ``Warden``: the daemon under test, started from a YAML config written in
  a private temporary directory, logging to a file there.
- ``SMTPClient``: a raw-socket SMTP client for byte-exact tests (pipelining,
  smuggling, STARTTLS injection) where smtplib hides too much.
- ``PostfixInstance`` and ``SinkServer``: a private Postfix 3.7 used as a
  real backend, relaying everything it accepts to a capture sink.

Run the tests with Debian's interpreter, ``/usr/bin/python3 -m pytest``.
Everything listens on 127.0.0.1 only; every process is stopped by its own
PID. Set WARDEN_KEEP_TMP=1 to keep the temporary directories for debugging.
"""

import atexit
import base64
import contextlib
import fcntl
import json
import os
import pwd
import re
import select
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

__all__ = [
    "free_port", "wait_for", "port_listening", "dump_yaml", "make_cert",
    "dot_stuff", "dot_unstuff", "parse_proxy_header",
    "CaptureBackend", "CaptureConnection", "Transaction", "SinkServer",
    "Warden", "check_config", "SMTPClient", "Reply", "SMTPClosed",
    "PostfixInstance", "PostfixError",
]

LOCALHOST = "127.0.0.1"
CRLF = b"\r\n"


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

def free_port():
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=10.0, interval=0.02, message=None):
    """Call predicate() until it returns a true value; return that value.

    Raises TimeoutError (with ``message`` or a default text) if it is still
    false after ``timeout`` seconds. Exceptions from predicate propagate.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(message or
                               "condition not met within %.1fs" % timeout)
        time.sleep(interval)


def port_listening(port):
    """True if some socket on this host is in LISTEN state on ``port``.

    Reads /proc/net/tcp{,6}, so it never opens a connection (a probe
    connection would show up as a session in Warden and in the backend).
    """
    want = "%04X" % port
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for row in f:
                    fields = row.split()
                    if len(fields) > 3 and fields[3] == "0A" and \
                            fields[1].rsplit(":", 1)[1] == want:
                        return True
        except OSError:
            continue
    return False


_live = []  # Wardens and PostfixInstances not yet stopped


@atexit.register
def _stop_leftovers():
    """Stop whatever a crashed script or test left running."""
    for obj in list(_live):
        try:
            obj.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


def _keep_tmp():
    return os.environ.get("WARDEN_KEEP_TMP", "") not in ("", "0")


def _rmtree(path):
    """Remove a temporary directory unless WARDEN_KEEP_TMP is set."""
    if not path or _keep_tmp():
        return
    for _ in range(3):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            return
        time.sleep(0.2)


def _tail(text, limit=8000):
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _address_of(target):
    """'host:port' for a CaptureBackend/PostfixInstance, port, or string."""
    if hasattr(target, "address"):
        return target.address
    if isinstance(target, int):
        return "%s:%d" % (LOCALHOST, target)
    return str(target)


def dot_stuff(body):
    """Dot-stuff message bytes for the wire (RFC 5321 4.5.2).

    Every line starting with "." gets one more "."; lines are split on
    CRLF only, so the bytes are otherwise unchanged.
    """
    out = re.sub(rb"(^|\r\n)\.", rb"\1..", body)
    return out


def dot_unstuff(data):
    """Undo dot-stuffing of DATA bytes as recorded by CaptureBackend."""
    return re.sub(rb"(^|\r\n)\.", rb"\1", data)


# ---------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------

_PLAIN_RE = re.compile(r"^[A-Za-z0-9_/][A-Za-z0-9_./:@+\-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n",
               "~", ""}
# Plain scalars a YAML 1.1 reader would take for numbers or dates.
_NUMBERISH_RE = re.compile(
    r"[-+]?[0-9_]*\.?[0-9_:]*([eE][-+]?[0-9]+)?|0[xob][0-9a-fA-F_]+|"
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}.*")


def _yaml_scalar(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, bytes):
        v = v.decode()
    s = str(v)
    if _PLAIN_RE.match(s) and s.lower() not in _YAML_WORDS \
            and not s.endswith(":") and not _NUMBERISH_RE.fullmatch(s):
        return s
    return json.dumps(s)  # a JSON string is a valid YAML double-quoted one


def dump_yaml(obj):
    """Serialize dicts, lists and scalars to block-style YAML text.

    Strings are plain when unambiguous, double-quoted otherwise; None is
    ``null``; empty containers are ``{}`` / ``[]``. Enough for configs.
    """
    lines = []

    def emit(o, indent, prefix_first=None):
        pad = " " * indent
        if isinstance(o, dict):
            if not o:
                lines.append(pad + "{}")
                return
            first = True
            for k, v in o.items():
                head = (prefix_first if first and prefix_first is not None
                        else pad)
                first = False
                key = _yaml_scalar(k)
                if isinstance(v, (dict, list)) and v:
                    lines.append(head + key + ":")
                    emit(v, indent + 2)
                else:
                    lines.append(head + key + ": " + (
                        "{}" if isinstance(v, dict) else
                        "[]" if isinstance(v, list) else _yaml_scalar(v)))
        elif isinstance(o, list):
            if not o:
                lines.append(pad + "[]")
                return
            for item in o:
                if isinstance(item, dict) and item:
                    emit(item, indent + 2, prefix_first=pad + "- ")
                elif isinstance(item, list) and item:
                    lines.append(pad + "-")
                    emit(item, indent + 2)
                else:
                    lines.append(pad + "- " + (
                        "{}" if isinstance(item, dict) else
                        "[]" if isinstance(item, list) else
                        _yaml_scalar(item)))
        else:
            lines.append(pad + _yaml_scalar(o))

    emit(obj, 0)
    return "\n".join(lines) + "\n"


def _deep_merge(base, over):
    """Merge dict ``over`` into a copy of ``base``; lists are replaced.

    A value of None in ``over`` deletes the key from the result.
    """
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------------------
# PROXY protocol
# ---------------------------------------------------------------------------

PROXY_V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def parse_proxy_header(header):
    """Parse a PROXY v1 or v2 header (bytes) into a dict.

    Keys: version (1|2), command ("PROXY"/"LOCAL" for v2, "PROXY" for v1),
    family ("TCP4", "TCP6", "UNKNOWN", or the v2 family byte as int when
    not inet), src, dst (address strings), sport, dport (ints), tlvs
    (raw bytes after the addresses, v2 only). Raises ValueError.
    """
    if header.startswith(b"PROXY "):
        parts = header.rstrip(b"\r\n").decode("ascii").split(" ")
        info = {"version": 1, "command": "PROXY", "family": parts[1]}
        if parts[1] in ("TCP4", "TCP6"):
            if len(parts) != 6:
                raise ValueError("bad PROXY v1 header %r" % header)
            info.update(src=parts[2], dst=parts[3], sport=int(parts[4]),
                        dport=int(parts[5]))
        return info
    if header.startswith(PROXY_V2_SIG) and len(header) >= 16:
        ver_cmd, fam = header[12], header[13]
        length = int.from_bytes(header[14:16], "big")
        body = header[16:16 + length]
        info = {"version": ver_cmd >> 4,
                "command": {0: "LOCAL", 1: "PROXY"}.get(ver_cmd & 15,
                                                        ver_cmd & 15),
                "family": fam, "tlvs": b""}
        if fam == 0x11 and len(body) >= 12:
            info.update(family="TCP4",
                        src=socket.inet_ntop(socket.AF_INET, body[0:4]),
                        dst=socket.inet_ntop(socket.AF_INET, body[4:8]),
                        sport=int.from_bytes(body[8:10], "big"),
                        dport=int.from_bytes(body[10:12], "big"),
                        tlvs=body[12:])
        elif fam == 0x21 and len(body) >= 36:
            info.update(family="TCP6",
                        src=socket.inet_ntop(socket.AF_INET6, body[0:16]),
                        dst=socket.inet_ntop(socket.AF_INET6, body[16:32]),
                        sport=int.from_bytes(body[32:34], "big"),
                        dport=int.from_bytes(body[34:36], "big"),
                        tlvs=body[36:])
        return info
    raise ValueError("not a PROXY header: %r" % header[:40])


# ---------------------------------------------------------------------------
# CaptureBackend: a fake SMTP server that records exact bytes
# ---------------------------------------------------------------------------


# Warden refuses to keep root: as root it drops to this account.
TEST_USER = "nobody"


def give_to_test_user(path):
    """chown ``path`` to TEST_USER when running as root (a spool_dir)."""
    if os.geteuid() == 0:
        pw = pwd.getpwnam(TEST_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def share_with_test_user(path):
    """Let TEST_USER reach files under ``path`` (a test's tmp_path): give
    others search permission on it and on its parents, which pytest makes
    0700. Files keep their own modes (0644 by default)."""
    path = os.path.abspath(path)
    while path not in ("/", "/tmp"):
        mode = os.stat(path).st_mode & 0o7777
        if mode & 0o011 != 0o011:
            os.chmod(path, mode | 0o011)
        path = os.path.dirname(path)

class _EOF(Exception):
    pass


class _Drop(Exception):
    pass


class Transaction:
    """One message as a CaptureBackend received it.

    ``mail`` is the MAIL command line, ``rcpts`` the RCPT lines the server
    accepted (all bytes incl. CRLF, as received), ``data`` the DATA/BDAT
    content bytes (still dot-stuffed for DATA), ``conn`` its connection.
    """

    def __init__(self, conn, mail, rcpts, data, bdat=False):
        self.conn = conn
        self.mail = mail
        self.rcpts = list(rcpts)
        self.data = data
        self.bdat = bdat

    def __repr__(self):
        return "<Transaction %r %r %d bytes>" % (self.mail, self.rcpts,
                                                 len(self.data))


class CaptureConnection:
    """One connection accepted by a CaptureBackend.

    Attributes (read them after waiting on the backend or on ``closed``):

    - ``raw``: every byte received, in order (PROXY header and DATA too).
    - ``commands``: each line received outside DATA/BDAT content, as
      received (CRLF included; a bare LF also ends a line); AUTH
      continuation lines included.
    - ``messages``: DATA content per message: the bytes between the 354 and
      the terminating CRLF.CRLF, without the final ".\\r\\n" (so a
      non-empty message ends with CRLF), still dot-stuffed. BDAT content
      (concatenated chunks) lands here too.
    - ``transactions``: ``Transaction`` objects (envelope + data).
    - ``proxy_header``: bytes of the PROXY header (when expect_proxy).
    - ``proxy``: the header parsed by ``parse_proxy_header``, or None.
    - ``xclient``: XCLIENT lines received; ``xclient_attrs``: merged
      NAME=value attributes (str -> str).
    - ``xforward``: XFORWARD lines.
    - ``helo``: the last HELO/EHLO argument (bytes); ``auth_user``: the
      user that authenticated (str) or None.
    - ``early_data``: one bool per 354 sent: True if the client had already
      sent bytes when 354 went out (a pipelining violation, RFC 2920).
    - ``sent``: every byte we sent.
    - ``closed``: threading.Event set when the connection is finished.
    - ``peer``: (host, port) of the client.
    """

    def __init__(self, backend, sock, peer):
        self.backend = backend
        self.sock = sock
        self.peer = peer
        self._raw = bytearray()
        self._buf = bytearray()
        self.sent = bytearray()
        self.commands = []
        self.messages = []
        self.transactions = []
        self.proxy_header = None
        self.proxy = None
        self.xclient = []
        self.xclient_attrs = {}
        self.xforward = []
        self.helo = None
        self.auth_user = None
        self.early_data = []
        self.closed = threading.Event()
        self.error = None
        self._mail = None
        self._rcpts = []
        self._bdat = None
        self._reply_counts = {}

    # -- recorded data --------------------------------------------------

    @property
    def raw(self):
        """All bytes received so far (bytes)."""
        with self.backend._cond:
            return bytes(self._raw)

    def __repr__(self):
        return "<CaptureConnection %s:%d %d commands %d messages%s>" % (
            self.peer[0], self.peer[1], len(self.commands),
            len(self.messages), " closed" if self.closed.is_set() else "")

    # -- I/O ---------------------------------------------------------------

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise _EOF()
        with self.backend._cond:
            self._raw += data
        self._buf += data

    def _readline(self):
        """A line ending in LF (CRLF or bare LF), as received."""
        start = 0
        while True:
            i = self._buf.find(b"\n", start)
            if i >= 0:
                line = bytes(self._buf[:i + 1])
                del self._buf[:i + 1]
                return line
            start = len(self._buf)
            self._recv()

    def _read_exact(self, n):
        while len(self._buf) < n:
            self._recv()
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _read_data(self):
        """DATA content up to (not including) the final ".\\r\\n".

        Only CRLF "." CRLF ends it; the CRLF that ended the DATA command
        counts as the first CRLF, so ".\\r\\n" right after 354 is an
        empty message.
        """
        pos = 0
        while True:
            if len(self._buf) >= 3 and self._buf[:3] == b".\r\n":
                del self._buf[:3]
                return b""
            if len(self._buf) >= 3 or \
                    not b".\r\n".startswith(bytes(self._buf)):
                i = self._buf.find(b"\r\n.\r\n", pos)
                if i >= 0:
                    msg = bytes(self._buf[:i + 2])
                    del self._buf[:i + 5]
                    return msg
                pos = max(0, len(self._buf) - 4)
            self._recv()

    def _pending(self):
        """True if the client has sent bytes we have not consumed yet."""
        if self._buf:
            return True
        try:
            r, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return bool(r)

    def send(self, data):
        """Send raw bytes to the client (records them in ``sent``)."""
        self.sent += data
        self.sock.sendall(data)

    def _reply(self, data, verb=None):
        if isinstance(data, str):
            data = data.encode()
        if not data.endswith(b"\n"):
            data += CRLF
        delay = self.backend._delay_for(verb)
        if delay:
            time.sleep(delay)
        self.send(data)
        return data

    # -- the session ---------------------------------------------------

    def _run(self):
        b = self.backend
        try:
            self.sock.settimeout(b.idle_timeout)
            if b._drops("CONNECT"):
                raise _Drop()
            if b.expect_proxy:
                if not self._read_proxy():
                    return
            if b.greeting_delay:
                time.sleep(b.greeting_delay)
            self._reply(b.banner)
            while True:
                line = self._readline()
                self._record(line)
                verb = line.split(b" ", 1)[0].strip().upper().decode(
                    "latin-1")
                if b._drops(verb):
                    raise _Drop()
                if self._handle(verb, line) == "quit":
                    break
        except _Drop:
            self._abort()
        except (_EOF, OSError) as e:
            if not isinstance(e, _EOF) and not b._stopping:
                self.error = e
        finally:
            try:
                self.sock.close()
            except OSError:
                pass
            self.closed.set()
            with b._cond:
                b._cond.notify_all()

    def _record(self, line):
        with self.backend._cond:
            self.commands.append(line)
            self.backend._cond.notify_all()

    def _abort(self):
        """Close abruptly (RST if the backend was built with drop_rst)."""
        if self.backend.drop_rst:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.sock.close()

    def _read_proxy(self):
        b = self.backend
        self.sock.settimeout(b.proxy_timeout)
        try:
            while len(self._buf) < 16 and b"\n" not in self._buf:
                self._recv()
            if self._buf.startswith(PROXY_V2_SIG):
                length = int.from_bytes(self._buf[14:16], "big")
                header = self._read_exact(16 + length)
            elif self._buf.startswith(b"PROXY "):
                header = self._readline()
            else:
                self.error = ValueError("no PROXY header: %r"
                                        % bytes(self._buf[:40]))
                return False
        except socket.timeout:
            self.error = TimeoutError("no PROXY header in time")
            return False
        with b._cond:
            self.proxy_header = header
            try:
                self.proxy = parse_proxy_header(header)
            except ValueError as e:
                self.error = e
            b._cond.notify_all()
        self.sock.settimeout(b.idle_timeout)
        return True

    def _override(self, verb, line):
        """The scripted reply for this command, or None for the default."""
        r = self.backend.replies
        if r is None:
            return None
        if callable(r):
            return r(self, line)
        if verb not in r:
            return None
        v = r[verb]
        if callable(v):
            return v(self, line)
        if isinstance(v, (list, tuple)):
            n = self._reply_counts.get(verb, 0)
            self._reply_counts[verb] = n + 1
            return v[n] if n < len(v) else None
        return v

    def _handle(self, verb, line):
        b = self.backend
        host = b.hostname
        if verb in ("EHLO", "HELO"):
            arg = line.rstrip(b"\r\n").split(b" ", 1)
            self.helo = arg[1] if len(arg) > 1 else b""
            if verb == "EHLO":
                items = [host] + list(b.ehlo_caps)
                default = b"".join(
                    b"250" + (b" " if i == len(items) - 1 else b"-") + it +
                    CRLF for i, it in enumerate(items))
            else:
                default = b"250 " + host
        elif verb == "MAIL":
            default = (b"503 5.5.1 Error: nested MAIL command"
                       if self._mail is not None else b"250 2.1.0 Ok")
        elif verb == "RCPT":
            default = (b"503 5.5.1 Error: need MAIL command"
                       if self._mail is None else b"250 2.1.5 Ok")
        elif verb == "DATA":
            if self._mail is None:
                default = b"503 5.5.1 Error: need RCPT command"
            elif not self._rcpts:
                default = b"554 5.5.1 Error: no valid recipients"
            else:
                default = b"354 End data with <CR><LF>.<CR><LF>"
        elif verb == "BDAT":
            return self._bdat_cmd(line)
        elif verb == "RSET":
            default = b"250 2.0.0 Ok"
        elif verb == "NOOP":
            default = b"250 2.0.0 Ok"
        elif verb == "QUIT":
            default = b"221 2.0.0 Bye"
        elif verb == "VRFY":
            default = b"252 2.0.0 Cannot VRFY user"
        elif verb == "STARTTLS":
            default = b"454 4.7.0 TLS not available due to local problem"
        elif verb == "XCLIENT":
            default = b"220 " + host + b" ESMTP"
        elif verb == "XFORWARD":
            default = b"250 2.0.0 Ok"
        elif verb == "AUTH":
            default = None
        elif verb == "":
            default = b"500 5.5.2 Error: bad syntax"
        else:
            default = b"502 5.5.2 Error: command not recognized"

        reply = self._override(verb, line)
        if reply is None and verb == "AUTH":
            reply = self._auth(line)
            if reply is None:
                return None
        if reply is None:
            reply = default
        if isinstance(reply, str):
            reply = reply.encode()
        code = reply[:3]
        ok = code.startswith(b"2")

        if verb in ("EHLO", "HELO", "RSET") and ok:
            self._reset()
        elif verb == "MAIL" and ok:
            self._mail = line
            self._rcpts = []
        elif verb == "RCPT" and ok:
            self._rcpts.append(line)
        elif verb == "XCLIENT":
            with b._cond:
                self.xclient.append(line)
                for attr in line.rstrip(b"\r\n").split(b" ")[1:]:
                    if b"=" in attr:
                        k, v = attr.split(b"=", 1)
                        self.xclient_attrs[k.decode().upper()] = v.decode()
            if ok:
                self._reset()
                self.helo = None
        elif verb == "XFORWARD":
            self.xforward.append(line)

        if verb == "DATA" and code == b"354":
            early = self._pending()
            self._reply(reply, verb)
            self.early_data.append(early)
            data = self._read_data()
            self._finish_message(data, bdat=False)
            return None
        self._reply(reply, verb)
        if verb == "QUIT":
            return "quit"
        return None

    def _reset(self):
        self._mail = None
        self._rcpts = []
        self._bdat = None

    def _finish_message(self, data, bdat):
        b = self.backend
        tx = Transaction(self, self._mail, self._rcpts, data, bdat=bdat)
        with b._cond:
            self.messages.append(data)
            self.transactions.append(tx)
            b._transactions.append(tx)
            b._cond.notify_all()
        if b.data_reply_delay:
            time.sleep(b.data_reply_delay)
        if b._drops("DATA_END"):
            raise _Drop()
        final = b.final_reply
        if callable(final):
            final = final(self, data)
        self._reply(final)
        self._reset()

    def _bdat_cmd(self, line):
        parts = line.split()
        try:
            size = int(parts[1])
        except (IndexError, ValueError):
            self._reply(b"501 5.5.4 Syntax: BDAT count [LAST]")
            return None
        last = len(parts) > 2 and parts[2].upper() == b"LAST"
        chunk = self._read_exact(size)
        reply = self._override("BDAT", line)
        if reply is None:
            if self._mail is None or not self._rcpts:
                reply = b"503 5.5.1 Error: need RCPT command"
            else:
                reply = b"250 2.0.0 Ok: %d bytes" % size
        if isinstance(reply, str):
            reply = reply.encode()
        if not reply.startswith(b"2"):
            self._bdat = None
            self._reply(reply, "BDAT")
            return None
        self._bdat = (self._bdat or b"") + chunk
        if last:
            data, self._bdat = self._bdat, None
            self._finish_message(data, bdat=True)
        else:
            self._reply(reply, "BDAT")
        return None

    def _auth(self, line):
        """Minimal AUTH PLAIN/LOGIN. Returns the final reply, or None
        when the exchange was aborted and already answered."""
        b = self.backend
        parts = line.rstrip(b"\r\n").split(b" ")
        mech = parts[1].upper() if len(parts) > 1 else b""
        initial = parts[2] if len(parts) > 2 else None

        def ask(prompt):
            self._reply(b"334 " + prompt)
            resp = self._readline()
            self._record(resp)
            resp = resp.rstrip(b"\r\n")
            if resp == b"*":
                raise _AuthAbort()
            return resp

        try:
            if mech == b"PLAIN":
                if initial is None:
                    initial = ask(b"")
                try:
                    fields = base64.b64decode(initial, validate=True).split(
                        b"\0")
                    user, password = fields[1], fields[2]
                except (ValueError, IndexError):
                    return b"501 5.5.2 Cannot decode response"
            elif mech == b"LOGIN":
                try:
                    user = base64.b64decode(
                        initial if initial is not None
                        else ask(b"VXNlcm5hbWU6"), validate=True)
                    password = base64.b64decode(ask(b"UGFzc3dvcmQ6"),
                                                validate=True)
                except ValueError:
                    return b"501 5.5.2 Cannot decode response"
            else:
                return b"504 5.5.4 Unsupported authentication mechanism"
        except _AuthAbort:
            self._reply(b"501 5.7.0 Authentication aborted")
            return None
        user_s = user.decode("utf-8", "replace")
        if b.auth_success_user is not None and \
                user_s == b.auth_success_user and \
                (b.auth_password is None or
                 password.decode("utf-8", "replace") == b.auth_password):
            self.auth_user = user_s
            return b"235 2.7.0 Authentication successful"
        return b"535 5.7.8 Error: authentication failed"


class _AuthAbort(Exception):
    pass


DEFAULT_EHLO_CAPS = [
    b"PIPELINING", b"SIZE 10240000", b"8BITMIME", b"SMTPUTF8", b"DSN",
    b"ENHANCEDSTATUSCODES", b"CHUNKING", b"STARTTLS", b"AUTH PLAIN LOGIN",
    b"XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT",
]


class CaptureBackend:
    """A fake SMTP server on 127.0.0.1 that records exact bytes.

    Started on construction (one thread per connection); ``stop()`` or
    ``with`` ends it. Options:

    - ``port``: 0 (default) for a free port; see ``.port``, ``.address``.
    - ``banner``: the greeting line (bytes, CRLF added).
    - ``hostname``: our name in EHLO/HELO/XCLIENT replies.
    - ``ehlo_caps``: EHLO keywords after the host name line (any list).
    - ``replies``: override the reply per command verb: a dict
      {"RCPT": b"550 5.1.1 no such user"} whose values may be bytes, a list
      of bytes (used in turn per connection, then the default), or a
      function(conn, line) -> bytes|None; or one function(conn, line) ->
      bytes|None for every command. None means the default reply. The
      state (MAIL accepted, recipients, 354 -> read DATA) follows the code
      of the reply actually sent. An override for AUTH skips the exchange.
    - ``final_reply``: reply after the message (bytes, or function(conn,
      data) -> bytes).
    - ``auth_success_user`` / ``auth_password``: AUTH PLAIN/LOGIN succeeds
      (235) for this user (and this password, if not None); else 535.
    - ``expect_proxy``: None, or 1/2/True to read a PROXY v1 or v2 header
      (either is accepted) before the banner; a connection without one is
      closed after ``proxy_timeout`` seconds.
    - ``greeting_delay``, ``data_reply_delay``: seconds to wait before the
      banner / the reply after the message; ``reply_delays``: a number (all
      command replies) or {verb: seconds}.
    - ``drop_after``: a verb or list of verbs ("RCPT", "DATA", ...) whose
      arrival closes the connection without a reply; also "CONNECT"
      (before the banner) and "DATA_END" (message read, no final reply).
      ``drop_rst=True`` makes that close an RST instead of a FIN.
    - ``idle_timeout``: seconds a connection may stay silent (60).

    STARTTLS is answered 454 (not implemented). XCLIENT is recorded and
    answered "220 <hostname> ESMTP" (the session restarts, as in Postfix).
    """

    def __init__(self, port=0, *, banner=b"220 backend.test ESMTP capture",
                 hostname=b"backend.test", ehlo_caps=None, replies=None,
                 final_reply=b"250 2.0.0 Ok: queued as TEST",
                 auth_success_user=None, auth_password=None,
                 expect_proxy=None, proxy_timeout=5.0, greeting_delay=0,
                 data_reply_delay=0, reply_delays=None, drop_after=None,
                 drop_rst=False, idle_timeout=60.0):
        self.banner = banner
        self.hostname = hostname
        self.ehlo_caps = list(DEFAULT_EHLO_CAPS if ehlo_caps is None
                              else ehlo_caps)
        self.replies = replies
        self.final_reply = final_reply
        self.auth_success_user = auth_success_user
        self.auth_password = auth_password
        self.expect_proxy = expect_proxy
        self.proxy_timeout = proxy_timeout
        self.greeting_delay = greeting_delay
        self.data_reply_delay = data_reply_delay
        self.reply_delays = reply_delays
        if isinstance(drop_after, str):
            drop_after = [drop_after]
        self.drop_after = {d.upper() for d in (drop_after or [])}
        self.drop_rst = drop_rst
        self.idle_timeout = idle_timeout
        self.connections = []
        self._transactions = []
        self._threads = []
        self._cond = threading.Condition()
        self._stopping = False
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind((LOCALHOST, port))
        self._lsock.listen(128)
        self.port = self._lsock.getsockname()[1]
        self._accepter = threading.Thread(target=self._accept_loop,
                                          name="capture-%d" % self.port,
                                          daemon=True)
        self._accepter.start()

    @property
    def address(self):
        """'127.0.0.1:port', as Warden's backend.address wants it."""
        return "%s:%d" % (LOCALHOST, self.port)

    def __repr__(self):
        return "<%s %s, %d connections>" % (type(self).__name__,
                                            self.address,
                                            len(self.connections))

    def _drops(self, verb):
        return verb in self.drop_after

    def _delay_for(self, verb):
        d = self.reply_delays
        if not d or verb is None:
            return 0
        if isinstance(d, (int, float)):
            return d
        return d.get(verb, 0)

    def _accept_loop(self):
        while not self._stopping:
            try:
                sock, peer = self._lsock.accept()
            except OSError:
                break
            if self._stopping:
                sock.close()
                break
            conn = CaptureConnection(self, sock, peer)
            t = threading.Thread(target=conn._run, daemon=True,
                                 name="capture-conn-%d" % peer[1])
            with self._cond:
                self.connections.append(conn)
                self._threads.append(t)
                self._cond.notify_all()
            t.start()

    # -- results ---------------------------------------------------------

    @property
    def messages(self):
        """All messages received so far, in order of completion (bytes)."""
        with self._cond:
            return [tx.data for tx in self._transactions]

    @property
    def transactions(self):
        """All Transactions so far, in order of completion."""
        with self._cond:
            return list(self._transactions)

    def wait_messages(self, n=1, timeout=10.0):
        """Wait until at least n messages arrived; return all of them."""
        self._wait(lambda: len(self._transactions) >= n, timeout,
                   "%d message(s)" % n)
        return self.messages

    def wait_transactions(self, n=1, timeout=10.0):
        """Like wait_messages, but return Transaction objects."""
        self._wait(lambda: len(self._transactions) >= n, timeout,
                   "%d message(s)" % n)
        return self.transactions

    def wait_connections(self, n=1, timeout=10.0):
        """Wait until at least n connections were accepted; return them."""
        self._wait(lambda: len(self.connections) >= n, timeout,
                   "%d connection(s)" % n)
        with self._cond:
            return list(self.connections)

    def wait_command(self, prefix, timeout=10.0, conn_index=None):
        """Wait until some connection (or connections[conn_index]) received
        a command line starting with ``prefix`` (bytes, case-insensitive).
        Return that line."""
        prefix = prefix.upper()

        def find():
            conns = (self.connections if conn_index is None
                     else self.connections[conn_index:conn_index + 1])
            for c in conns:
                for line in c.commands:
                    if line.upper().startswith(prefix):
                        return line
            return None
        found = []
        self._wait(lambda: found.append(find()) or found[-1] is not None,
                   timeout, "a command starting with %r" % prefix)
        return found[-1]

    def wait_closed(self, n=None, timeout=10.0):
        """Wait until every connection so far (or the first n, once that
        many exist) has closed."""
        def done():
            conns = self.connections
            if n is not None:
                if len(conns) < n:
                    return False
                conns = conns[:n]
            return all(c.closed.is_set() for c in conns)
        self._wait(done, timeout, "connections to close")

    def _wait(self, pred, timeout, what):
        with self._cond:
            if not self._cond.wait_for(pred, timeout):
                raise TimeoutError(
                    "%r: no %s within %.1fs; commands so far: %r" % (
                        self, what, timeout,
                        [c.commands for c in self.connections]))

    # -- lifetime --------------------------------------------------------

    def stop(self):
        """Close the listener and every connection; join the threads."""
        if self._stopping:
            return
        self._stopping = True
        try:
            self._lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._lsock.close()
        with self._cond:
            conns = list(self.connections)
            threads = list(self._threads)
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._accepter.join(5)
        for t in threads:
            t.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class SinkServer(CaptureBackend):
    """Where a private Postfix relays to: a CaptureBackend with the EHLO
    keywords of a plain receiving MTA (no STARTTLS, AUTH, XCLIENT or
    CHUNKING), so Postfix's smtp client speaks plain DATA to it.

    ``wait_messages(n)`` returns the raw DATA bytes (dot-stuffed as on the
    wire; see ``dot_unstuff``), Received: headers included.
    """

    def __init__(self, port=0, **kw):
        kw.setdefault("banner", b"220 sink.test ESMTP sink")
        kw.setdefault("hostname", b"sink.test")
        kw.setdefault("ehlo_caps", [b"PIPELINING", b"SIZE 52428800",
                                    b"8BITMIME", b"SMTPUTF8",
                                    b"ENHANCEDSTATUSCODES", b"DSN"])
        kw.setdefault("final_reply", b"250 2.0.0 Ok: queued by sink")
        super().__init__(port, **kw)


# ---------------------------------------------------------------------------
# Raw SMTP client
# ---------------------------------------------------------------------------

class SMTPClosed(ConnectionError):
    """The server closed the connection; ``.data`` holds unread bytes."""

    def __init__(self, msg, data=b""):
        super().__init__(msg)
        self.data = data


class Reply(tuple):
    """An SMTP reply: a (code, lines, raw) tuple with attribute access.

    ``lines`` are the text of each line without the code, separator and
    line ending (bytes); ``raw`` the bytes exactly as received.
    """

    def __new__(cls, code, lines, raw):
        return super().__new__(cls, (code, lines, raw))

    code = property(lambda self: self[0])
    lines = property(lambda self: self[1])
    raw = property(lambda self: self[2])

    @property
    def text(self):
        """All lines joined with "\\n", decoded as UTF-8."""
        return b"\n".join(self.lines).decode("utf-8", "replace")

    def __repr__(self):
        return "Reply(%d, %r)" % (self.code, self.raw)


class SMTPClient:
    """A raw-socket SMTP client for byte-exact tests.

    Nothing is sent implicitly: ``connect`` does not read the banner; call
    ``expect(220)``. ``send`` writes bytes as given (no CRLF added);
    ``cmd`` adds CRLF when missing and reads one reply.
    """

    def __init__(self, port=None, host=LOCALHOST, timeout=10.0):
        self.sock = None
        self._buf = bytearray()
        self.timeout = timeout
        self.discarded_plaintext = b""
        if port is not None:
            self.connect(port, host)

    def connect(self, port, host=LOCALHOST, timeout=None, source=None):
        """Open a TCP connection to host:port; return self."""
        self.close()
        self.sock = socket.create_connection(
            (host, port), timeout=timeout or self.timeout,
            source_address=source)
        self._buf = bytearray()
        return self

    def send(self, data):
        """Send bytes exactly as given."""
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no (complete) reply; have %r"
                               % bytes(self._buf))
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no (complete) reply; have %r"
                               % bytes(self._buf)) from None
        except ConnectionResetError as e:
            raise SMTPClosed("connection reset: %s" % e,
                             bytes(self._buf)) from None
        if not data:
            raise SMTPClosed("connection closed by server; unread %r"
                             % bytes(self._buf), bytes(self._buf))
        self._buf += data

    def _readline(self, deadline):
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line = bytes(self._buf[:i + 1])
                del self._buf[:i + 1]
                return line
            self._fill(deadline)

    def read_reply(self, timeout=None):
        """Read one (possibly multi-line) reply; return Reply(code, lines,
        raw). Raises TimeoutError, SMTPClosed, or ValueError for a line
        that is not a reply line."""
        deadline = time.monotonic() + (timeout or self.timeout)
        raw = b""
        lines = []
        code = None
        while True:
            line = self._readline(deadline)
            raw += line
            text = line[:-2] if line.endswith(CRLF) else line[:-1]
            if len(text) < 3 or not text[:3].isdigit() or \
                    (len(text) > 3 and text[3:4] not in (b" ", b"-")):
                raise ValueError("malformed reply line %r (reply so far %r)"
                                 % (line, raw))
            c = int(text[:3])
            if code is None:
                code = c
            elif c != code:
                raise ValueError("reply code changed mid-reply: %r" % raw)
            lines.append(text[4:])
            if len(text) == 3 or text[3:4] == b" ":
                return Reply(code, lines, raw)

    def read_replies(self, n, timeout=None):
        """Read n replies (e.g. after a pipelined group)."""
        return [self.read_reply(timeout) for _ in range(n)]

    def expect(self, code, timeout=None):
        """Read one reply and assert its code: an int, a tuple/set of ints,
        or a single digit 2..5 meaning that class (e.g. 2 for 2xx)."""
        r = self.read_reply(timeout)
        if isinstance(code, int) and code < 10:
            ok = r.code // 100 == code
        elif isinstance(code, int):
            ok = r.code == code
        else:
            ok = r.code in code
        assert ok, "expected %r, got %r" % (code, r.raw)
        return r

    def cmd(self, line, expect=None, timeout=None):
        """Send a command (CRLF appended if missing), read its reply and
        optionally check the code as ``expect`` does."""
        if isinstance(line, str):
            line = line.encode()
        if not line.endswith(b"\n"):
            line += CRLF
        self.send(line)
        if expect is None:
            return self.read_reply(timeout)
        return self.expect(expect, timeout)

    def ehlo(self, name="client.test"):
        """EHLO name, expecting 250; return the Reply (lines = keywords)."""
        return self.cmd("EHLO " + name, expect=250)

    def sendmail(self, mail_from, rcpts, message, stuff=True):
        """MAIL/RCPT/DATA one by one (not pipelined); return the final
        Reply. ``message`` is bytes (a CRLF is added if missing; dot-
        stuffed unless stuff=False). Asserts 250/354 on the way."""
        if isinstance(rcpts, (str, bytes)):
            rcpts = [rcpts]
        self.cmd("MAIL FROM:<%s>" % mail_from, expect=250)
        for r in rcpts:
            self.cmd("RCPT TO:<%s>" % r, expect=250)
        self.cmd("DATA", expect=354)
        if not message.endswith(CRLF):
            message += CRLF
        self.send((dot_stuff(message) if stuff else message) + b".\r\n")
        return self.read_reply()

    def starttls(self, context=None, server_hostname="localhost",
                 send_command=True, strict=True):
        """Upgrade the connection to TLS in place.

        With send_command, sends STARTTLS and expects 220 first. Bytes the
        server sent after that 220 (before the handshake) are kept in
        ``discarded_plaintext``; with strict they fail the call (a server
        must not send them). The default context verifies nothing."""
        if send_command:
            self.cmd("STARTTLS", expect=220)
        if self._buf:
            self.discarded_plaintext = bytes(self._buf)
            self._buf = bytearray()
            if strict:
                raise AssertionError("plaintext after STARTTLS 220: %r"
                                     % self.discarded_plaintext)
        if context is None:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self.sock.settimeout(self.timeout)
        self.sock = context.wrap_socket(self.sock,
                                        server_hostname=server_hostname)
        return self.sock

    def wait_closed(self, timeout=None):
        """Read until the server closes; return the bytes read (including
        unread buffered ones). Raises TimeoutError if it stays open."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                self._fill(deadline)
            except SMTPClosed:
                data = bytes(self._buf)
                self._buf = bytearray()
                return data

    def close(self):
        """Close the socket (no QUIT)."""
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------

def make_cert(directory, cn="localhost"):
    """Create a self-signed RSA-2048 cert and key in ``directory`` with
    openssl; return (cert_path, key_path)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-subj", "/CN=" + cn, "-days", "2",
                    "-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)
    return cert, key


# ---------------------------------------------------------------------------
# Log helpers shared by Warden and PostfixInstance
# ---------------------------------------------------------------------------

class _LogFile:
    log_path = None

    def log(self):
        """The whole log file as text ("" if it does not exist yet)."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_mark(self):
        """The current log length, for wait_log(..., since=mark)."""
        return len(self.log())

    def wait_log(self, pattern, timeout=10.0, since=0):
        """Wait until regex ``pattern`` (str, re.M) matches the log text
        from offset ``since``; return the re.Match."""
        rx = re.compile(pattern, re.M)
        found = []

        def check():
            m = rx.search(self.log(), since)
            found.append(m)
            return m
        try:
            return wait_for(check, timeout)
        except TimeoutError:
            raise TimeoutError("%r not in %s within %.1fs:\n%s" % (
                pattern, self.log_path, timeout,
                _tail(self.log()[since:]))) from None


# ---------------------------------------------------------------------------
# Warden
# ---------------------------------------------------------------------------

def _warden_bin(bin_path=None):
    path = bin_path or os.environ.get("WARDEN_BIN")
    if not path:
        raise RuntimeError("WARDEN_BIN is not set (run through ctest, or "
                           "export WARDEN_BIN=/path/to/build/warden)")
    return path


def _listener_ports(cfg):
    ports = []
    for lst in cfg.get("listen") or []:
        addr = str(lst.get("address", ""))
        m = re.search(r":(\d+)$", addr)
        if m:
            ports.append(int(m.group(1)))
    return ports


class Warden(_LogFile):
    """The warden daemon under test.

    ``config`` is a dict merged over the test defaults below (nested dicts
    merge, lists replace, a None value deletes a key), or a str written
    verbatim. ``backend`` fills backend.address: a CaptureBackend,
    SinkServer or PostfixInstance, a port, "host:port", or a list of those.

    Defaults: one listener "smtp" on 127.0.0.1:<free port>, hostname
    warden.test, backend.client_identity none, log to stderr at debug,
    dns.resolve_client false, timeouts.shutdown 2s, spool_dir in the
    temporary directory, user TEST_USER ("nobody", who owns that directory
    when the tests run as root). Listener entries may leave out ``address`` (a
    free port is filled in).

    stdout+stderr go to ``<dir>/warden.log`` (``log()``). WARDEN_WRAPPER in
    the environment (e.g. "valgrind -q") prefixes the command.
    """

    def __init__(self, config=None, backend=None, *, bin_path=None,
                 start=True, timeout=10.0, env=None, args=()):
        self.bin = _warden_bin(bin_path)
        self.dir = tempfile.mkdtemp(prefix="warden-test-")
        # Started as root, Warden runs as TEST_USER: it must be able to
        # spool here and re-read its config on reload.
        give_to_test_user(self.dir)
        self.config_path = os.path.join(self.dir, "warden.yaml")
        self.log_path = os.path.join(self.dir, "warden.log")
        self.backend = backend
        self.proc = None
        self.returncode = None
        self.env = env
        self.args = list(args)
        self.start_timeout = timeout
        self.write_config(config)
        if start:
            try:
                self.start()
            except BaseException:
                self.stop()
                raise

    # -- configuration -------------------------------------------------

    def defaults(self):
        """The default config dict (before the caller's is merged)."""
        d = {
            "hostname": "warden.test",
            "listen": [{"name": "smtp",
                        "address": "%s:%d" % (LOCALHOST, free_port())}],
            "backend": {"client_identity": "none"},
            "log": {"target": "stderr", "level": "debug"},
            "dns": {"resolve_client": False},
            "timeouts": {"shutdown": "2s"},
            "spool_dir": self.dir,
            # the account Warden drops root for (ignored when not root)
            "user": TEST_USER,
            # one admin socket per instance: tests run side by side
            "control_socket": os.path.join(self.dir, "control.sock"),
        }
        if self.backend is not None:
            b = self.backend
            d["backend"]["address"] = ([_address_of(x) for x in b]
                                       if isinstance(b, (list, tuple))
                                       else _address_of(b))
        return d

    def build_config(self, config):
        """Merge ``config`` (dict) over defaults(); fill missing listener
        addresses with free ports. Returns the dict."""
        cfg = _deep_merge(self.defaults(), config or {})
        listen = []
        for lst in cfg.get("listen") or []:
            lst = dict(lst)
            if not lst.get("address"):
                lst["address"] = "%s:%d" % (LOCALHOST, free_port())
            listen.append(lst)
        if "listen" in cfg:
            cfg["listen"] = listen
        return cfg

    def write_config(self, config=None):
        """(Re)write the config file from a dict (merged over defaults) or
        verbatim text. Sets ``.config`` (dict or None) and ``.ports``."""
        if isinstance(config, str):
            self.config = None
            text = config
            self.ports = [int(p) for p in re.findall(
                r"address:\s*\"?(?:127\.0\.0\.1|\[::1\]|localhost):(\d+)",
                text)]
        else:
            self.config = self.build_config(config)
            text = dump_yaml(self.config)
            self.ports = _listener_ports(self.config)
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)
        return self.config_path

    @property
    def port(self):
        """The first listener's port."""
        return self.ports[0]

    @property
    def address(self):
        return "%s:%d" % (LOCALHOST, self.port)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    # -- process -----------------------------------------------------------

    def start(self):
        """Start the daemon; wait until every listener port is LISTENing.
        Raises RuntimeError with the log if it exits or times out."""
        wrapper = shlex.split(os.environ.get("WARDEN_WRAPPER", ""))
        cmd = wrapper + [self.bin, "-c", self.config_path] + self.args
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf,
                                         cwd=self.dir, env=env)
        self.returncode = None
        _live.append(self)
        deadline = time.monotonic() + self.start_timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                raise RuntimeError("warden exited with %d at start:\n%s"
                                   % (rc, _tail(self.log())))
            if all(port_listening(p) for p in self.ports):
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "warden not listening on %r after %.0fs:\n%s"
                    % (self.ports, self.start_timeout, _tail(self.log())))
            time.sleep(0.02)

    def running(self):
        """True while the process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        """Send a signal to the warden process (by its PID)."""
        self.proc.send_signal(sig)

    def pause(self, timeout=5.0):
        """SIGSTOP, and wait until the kernel says the process is stopped:
        kill() returns before a running thread has stopped, and bytes sent
        meanwhile may still be read."""
        self.proc.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open("/proc/%d/stat" % self.proc.pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                    return
            time.sleep(0.005)
        raise TimeoutError("warden did not stop")

    def reload(self, config=None, wait=True, timeout=10.0,
               pattern=r"reload(: ok| failed)"):
        """Rewrite the config (if given: dict merged over the defaults,
        keeping the current listener ports unless it names listeners, or
        text) and send SIGHUP. With wait, wait for ``pattern`` in the log
        after the signal and return the match (group(1) is ": ok" or
        " failed" with the default pattern)."""
        if isinstance(config, dict) and "listen" not in config and \
                self.config is not None:
            config = dict(config, listen=self.config["listen"])
        if config is not None:
            self.write_config(config)
        mark = self.log_mark()
        self.signal(signal.SIGHUP)
        if wait:
            return self.wait_log(pattern, timeout, since=mark)
        return None

    def wait_exit(self, timeout=10.0):
        """Wait for the process to exit on its own; return its code."""
        self.returncode = self.proc.wait(timeout)
        return self.returncode

    def stop(self, timeout=10.0):
        """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit
        code (negative: killed by that signal). Idempotent; removes the
        temporary directory."""
        if self.proc is not None and self.returncode is None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            self.returncode = self.proc.returncode
        if self in _live:
            _live.remove(self)
        self._final_log = self.log()
        _rmtree(self.dir)
        return self.returncode

    def log(self):
        """The daemon's stdout+stderr so far (kept after stop())."""
        if not os.path.exists(self.log_path) and \
                getattr(self, "_final_log", None) is not None:
            return self._final_log
        return super().log()

    def sanitizer_errors(self):
        """Log lines from ASan/UBSan/LSan, if any."""
        return [l for l in self.log().splitlines()
                if "Sanitizer" in l or "runtime error:" in l]

    def run_once(self, timeout=10.0):
        """Run the daemon on the written config in the foreground until it
        exits by itself (a start that fails); return (returncode,
        stdout+stderr text)."""
        r = subprocess.run([self.bin, "-c", self.config_path],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        return r.returncode, r.stdout.decode("utf-8", "replace")

    def check_config(self, config):
        """Run ``warden -t -c`` on a config (dict merged over this
        instance's defaults, or verbatim text); return (returncode,
        stdout+stderr text)."""
        text = config if isinstance(config, str) else \
            dump_yaml(self.build_config(config))
        path = os.path.join(self.dir, "check-%d.yaml" % time.monotonic_ns())
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([self.bin, "-t", "-c", path],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        return r.returncode, r.stdout.decode("utf-8", "replace")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return "<Warden pid=%s %s>" % (self.pid, self.ports)


def check_config(config, backend="127.0.0.1:10025", bin_path=None):
    """``warden -t -c`` on a dict (merged over Warden's test defaults) or
    text, without starting anything; returns (returncode, output)."""
    w = Warden(None, backend, bin_path=bin_path, start=False)
    try:
        return w.check_config(config)
    finally:
        w.stop()


# ---------------------------------------------------------------------------
# Postfix
# ---------------------------------------------------------------------------

class PostfixError(RuntimeError):
    pass


DEFAULT_MAIN_CF = "/etc/postfix/main.cf"
_ALTDIR_LOCK = os.path.join(tempfile.gettempdir(),
                            ".wardentest-postfix-altdirs.lock")
_PF_PREFIX = "warden-pf-"


@contextlib.contextmanager
def _locked(path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _alt_dirs_update(add=None, remove=None):
    """Add/remove a directory in alternate_config_directories of the
    default /etc/postfix/main.cf, under a lock, keeping everything else.
    Also prunes entries left by earlier runs of this harness whose
    directories are gone. Creates a minimal main.cf if there is none."""
    with _locked(_ALTDIR_LOCK):
        if not os.path.exists(DEFAULT_MAIN_CF):
            if add is None:
                return
            with open(DEFAULT_MAIN_CF, "w") as f:
                f.write("# Minimal main.cf created by Warden's functional "
                        "test harness\n# (tests/functional/wardentest.py) "
                        "so private instances may run.\n"
                        "compatibility_level = 3.6\n")
        r = subprocess.run(["postconf", "-c", "/etc/postfix", "-h",
                            "alternate_config_directories"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        if r.returncode != 0:
            raise PostfixError("postconf failed on %s: %s" % (
                DEFAULT_MAIN_CF, r.stderr.decode(errors="replace")))
        current = [d for d in re.split(r"[\s,]+", r.stdout.decode().strip())
                   if d]
        tmp_prefix = os.path.join(tempfile.gettempdir(), _PF_PREFIX)
        new = [d for d in current
               if d != remove and not (d.startswith(tmp_prefix)
                                       and not os.path.isdir(d))]
        if add is not None and add not in new:
            new.append(add)
        if new == current:
            return
        subprocess.run(["postconf", "-c", "/etc/postfix", "-e",
                        "alternate_config_directories = " + " ".join(new)],
                       check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=30)
        # Postfix programs wait until a config file is over a second old
        # (it might be mid-edit); backdate it so a start is not delayed.
        past = time.time() - 5
        os.utime(DEFAULT_MAIN_CF, (past, past))


def _cf_value(v):
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    return str(v)


def _pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _proc_stat(pid):
    """(comm, state, ppid) of a process, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return None
    rest = st.rsplit(")", 1)[1].split()
    return st[st.index("(") + 1:st.rindex(")")], rest[0], int(rest[1])


def _children_of(ppid):
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _proc_stat(int(name))
            if st and st[2] == ppid:
                pids.append(int(name))
    return pids


_subreaper = False


def _become_subreaper():
    """Make this process the reaper of its orphaned descendants.

    Postfix daemonizes; here PID 1 does not reap, so its exited daemons
    would stay zombies forever. As a subreaper, this process inherits them
    and PostfixInstance.stop() reaps exactly the PIDs of its instance."""
    global _subreaper
    if _subreaper:
        return
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        _subreaper = libc.prctl(36, 1, 0, 0, 0) == 0  # CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap(pids, timeout=3.0):
    """Wait for these PIDs to exit and reap those that are our children
    (only these PIDs: never a wait on -1, which would steal the exit
    status of subprocess.Popen objects)."""
    deadline = time.monotonic() + timeout
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            st = _proc_stat(pid)
            if st is None:
                pending.discard(pid)
            elif st[1] == "Z":
                if st[2] == os.getpid():
                    try:
                        os.waitpid(pid, os.WNOHANG)
                    except ChildProcessError:
                        pass
                pending.discard(pid)
        if pending:
            time.sleep(0.02)


@contextlib.contextmanager
def _syslog_capture():
    """Bind a datagram socket on /dev/log (only if none exists) and yield a
    function returning what was logged. Postfix reports errors there
    before its maillog_file works."""
    path = "/dev/log"
    sock = None
    if not os.path.exists(path):
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(path)
            sock.setblocking(False)
        except OSError:
            sock = None
    got = []

    def read():
        if sock is not None:
            while True:
                try:
                    got.append(sock.recv(65536).decode("utf-8", "replace"))
                except (BlockingIOError, OSError):
                    break
        return "\n".join(got) if sock is not None else \
            "(could not capture syslog: %s exists)" % path
    try:
        yield read
    finally:
        if sock is not None:
            read()
            sock.close()
            try:
                os.unlink(path)
            except OSError:
                pass


class PostfixInstance(_LogFile):
    """A private Postfix (3.7) in a temporary directory, as root.

    The directory holds main.cf, master.cf (from master.cf.dist, chroot n
    everywhere, smtpd on 127.0.0.1:<port>), queue/ and data/ (owned by
    postfix) and maillog (``maillog()``, ``wait_log()``). It relays
    everything to ``relay_to`` (a SinkServer/CaptureBackend, port or
    "host:port"); by default a new SinkServer that it owns (``.sink``).

    - ``relay_domains``: accepted recipient domains ("example.com
      example.net").
    - ``proxy_protocol``: smtpd expects a PROXY header
      (smtpd_upstream_proxy_protocol = haproxy).
    - ``main_cf``: extra main.cf settings {name: value} (lists are joined
      with ", ", bools become yes/no), e.g. smtpd_client_restrictions;
      other keyword arguments are main.cf settings too, e.g.
      ``PostfixInstance(smtpd_forbid_bare_newline="reject")``.
    - ``smtpd_options``: extra -o settings for the smtpd service only.

    Defaults worth knowing: smtpd_peername_lookup = no (client names are
    "unknown"), smtpd_authorized_xclient_hosts = 127.0.0.0/8, mynetworks =
    127.0.0.0/8, short retry times, no TLS.
    """

    def __init__(self, relay_to=None, *, port=None, proxy_protocol=False,
                 relay_domains="example.com example.net", main_cf=None,
                 smtpd_options=None, myhostname="postfix.test", start=True,
                 timeout=30.0, **settings):
        if os.geteuid() != 0:
            raise PostfixError("a private Postfix needs root")
        if shutil.which("postfix") is None and \
                not os.path.exists("/usr/sbin/postfix"):
            raise PostfixError("postfix is not installed")
        self.own_sink = relay_to is None
        self.sink = SinkServer() if relay_to is None else relay_to
        self.relay_address = _address_of(self.sink)
        self.port = port or free_port()
        self.proxy_protocol = proxy_protocol
        self.timeout = timeout
        self.dir = tempfile.mkdtemp(prefix=_PF_PREFIX)
        os.chmod(self.dir, 0o755)
        self.config_dir = os.path.join(self.dir, "etc")
        os.mkdir(self.config_dir, 0o755)
        self.queue_dir = os.path.join(self.dir, "queue")
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "maillog")
        self.ctl_log = os.path.join(self.dir, "postfix-ctl.log")
        self.started = False
        self._master_pid = None
        os.mkdir(self.queue_dir, 0o755)
        os.mkdir(self.data_dir, 0o700)
        pw = _getpwnam("postfix")
        os.chown(self.data_dir, pw[0], pw[1])
        host, rport = self.relay_address.rsplit(":", 1)
        cf = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "mail_owner": "postfix",
            "myhostname": myhostname,
            "mydomain": "test",
            "myorigin": myhostname,
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mydestination": "",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "relay_domains": relay_domains,
            "relayhost": "[%s]:%s" % (host.strip("[]"), rport),
            "mynetworks": "127.0.0.0/8",
            "smtp_dns_support_level": "disabled",
            "smtpd_peername_lookup": "no",
            "smtpd_authorized_xclient_hosts": "127.0.0.0/8",
            "maillog_file": self.log_path,
            "maillog_file_prefixes": self.dir,
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "biff": "no",
            "default_process_limit": "20",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "smtp_connect_timeout": "5s",
        }
        extra = dict(main_cf or {})
        extra.update(settings)
        cf.update({k: _cf_value(v) for k, v in extra.items()})
        self.main_cf = cf
        with open(os.path.join(self.config_dir, "main.cf"), "w") as f:
            for k, v in cf.items():
                f.write("%s = %s\n" % (k, v))
        opts = dict(smtpd_options or {})
        if proxy_protocol:
            opts.setdefault("smtpd_upstream_proxy_protocol", "haproxy")
        self._write_master_cf(opts)
        # Postfix re-reads a config file until it is more than a second
        # old (it might be mid-edit): backdate ours to start at once.
        past = time.time() - 10
        for name in ("main.cf", "master.cf"):
            os.utime(os.path.join(self.config_dir, name), (past, past))
        if start:
            try:
                self.start()
            except BaseException:
                self.stop()
                raise

    @property
    def address(self):
        return "%s:%d" % (LOCALHOST, self.port)

    def _write_master_cf(self, opts):
        with open("/usr/share/postfix/master.cf.dist") as f:
            src = f.read().splitlines()
        out = []
        skip_continuation = False
        for line in src:
            if line.startswith((" ", "\t")) and line.strip() and \
                    not line.lstrip().startswith("#"):
                if not skip_continuation:
                    out.append(line)
                continue
            skip_continuation = False
            if not line.strip() or line.startswith("#"):
                out.append(line)
                continue
            f = line.split()
            if len(f) < 8:
                out.append(line)
                continue
            if f[0] == "smtp" and f[1] == "inet":
                # Replace with ours; drop the original's -o lines.
                skip_continuation = True
                f[0] = "%s:%d" % (LOCALHOST, self.port)
                f[4] = "n"
                out.append("  ".join(f))
                for k, v in opts.items():
                    out.append("  -o { %s = %s }" % (k, _cf_value(v)))
                continue
            f[4] = "n"
            out.append("  ".join(f[:7]) + "  " + " ".join(f[7:]))
        with open(os.path.join(self.config_dir, "master.cf"), "w") as fh:
            fh.write("\n".join(out) + "\n")

    def postfix(self, *args, timeout=60):
        """Run ``postfix -c DIR args...``; output goes to postfix-ctl.log.
        Returns the CompletedProcess."""
        with open(self.ctl_log, "ab") as out:
            return subprocess.run(["postfix", "-c", self.config_dir] + list(args),
                                  stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=out, timeout=timeout)

    def postconf(self, *args):
        """Run ``postconf -c DIR args...``; return stdout text."""
        r = subprocess.run(["postconf", "-c", self.config_dir] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        return r.stdout.decode("utf-8", "replace")

    def _read_master_pid(self):
        try:
            with open(os.path.join(self.queue_dir, "pid",
                                   "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _make_queue_dirs(self):
        """Create the queue directories as postfix-files says, so the
        start can skip Postfix's slow (~2 s) install checks."""
        pw = _getpwnam("postfix")
        import grp
        groups = {"-": None}
        with open("/etc/postfix/postfix-files") as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) < 5 or parts[1] != "d" or \
                        not parts[0].startswith("$queue_directory/"):
                    continue
                path = os.path.join(self.queue_dir,
                                    parts[0][len("$queue_directory/"):])
                owner = pw[0] if parts[2] == "$mail_owner" else 0
                gname = "postdrop" if parts[3] == "$setgid_group" \
                    else parts[3]
                if gname not in groups:
                    groups[gname] = grp.getgrnam(gname).gr_gid
                gid = groups[gname]
                os.makedirs(path, exist_ok=True)
                os.chown(path, owner, 0 if gid is None else gid)
                os.chmod(path, int(parts[4], 8))

    def start(self):
        """``postfix -c DIR start`` and wait until smtpd listens.

        The queue directories are made here and Postfix's own checks are
        skipped (its "quick-start" file); if that start fails, a normal
        start with all checks is tried before giving up."""
        _become_subreaper()
        if self not in _live:
            _live.append(self)
        _alt_dirs_update(add=self.config_dir)
        r = None
        try:
            self._make_queue_dirs()
            open(os.path.join(self.queue_dir, "quick-start"), "w").close()
            r = self.postfix("start")
        except (OSError, KeyError):
            pass
        if r is None or r.returncode != 0:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.queue_dir, "quick-start"))
            r = self.postfix("start")
        if r.returncode != 0:
            self._start_failed("postfix start exited %d" % r.returncode)
        self.started = True
        self._master_pid = self._read_master_pid()
        deadline = time.monotonic() + self.timeout
        while not port_listening(self.port):
            if time.monotonic() > deadline:
                self._start_failed("smtpd not listening on %d" % self.port)
            time.sleep(0.05)
        return self

    def _start_failed(self, why):
        """Re-run the start under a /dev/log capture to show the errors."""
        with _syslog_capture() as read:
            self.postfix("stop")
            self.postfix("check")
            self.postfix("start")
            time.sleep(0.5)
            syslog = read()
            self.postfix("stop")
        with open(self.ctl_log, "rb") as f:
            ctl = f.read().decode("utf-8", "replace")
        raise PostfixError(
            "%s (instance %s)\n--- postfix output:\n%s\n--- syslog:\n%s\n"
            "--- maillog:\n%s" % (why, self.dir, _tail(ctl), _tail(syslog),
                                  _tail(self.log())))

    def maillog(self):
        """The instance's maillog text."""
        return self.log()

    def flush(self):
        """Ask the queue manager to retry deferred mail now."""
        subprocess.run(["postqueue", "-c", self.config_dir, "-f"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=30)

    def queue(self):
        """``postqueue -p`` output (the queue listing)."""
        r = subprocess.run(["postqueue", "-c", self.config_dir, "-p"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        return r.stdout.decode("utf-8", "replace")

    def stop(self):
        """``postfix -c DIR stop``, wait for its master to exit (abort,
        then SIGKILL of that master PID after 10 s), stop an owned sink,
        remove the directory and its alternate_config_directories entry."""
        if self.started:
            pid = self._read_master_pid() or self._master_pid
            daemons = _children_of(pid) if pid else []
            self.postfix("stop")
            deadline = time.monotonic() + 10
            while pid and _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if pid and _pid_alive(pid):
                self.postfix("abort")
                time.sleep(0.5)
                if _pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
            if pid:
                _reap([pid] + daemons + _children_of(pid))
            self.started = False
            self._final_log = self.log()
        if self in _live:
            _live.remove(self)
        if self.own_sink and hasattr(self.sink, "stop"):
            self.sink.stop()
        try:
            _alt_dirs_update(remove=self.config_dir)
        except (PostfixError, subprocess.SubprocessError, OSError):
            pass
        _rmtree(self.dir)

    def log(self):
        if not os.path.exists(self.log_path) and \
                getattr(self, "_final_log", None) is not None:
            return self._final_log
        return super().log()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return "<PostfixInstance %s %s>" % (self.address, self.dir)


def _getpwnam(name):
    import pwd
    p = pwd.getpwnam(name)
    return p.pw_uid, p.pw_gid
