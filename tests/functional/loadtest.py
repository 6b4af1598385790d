"""
loadtest: load, a real capturing backend and bookkeeping for the fault
injection and resource exhaustion tests.

- ``SmtpSink``: Postfix's real ``smtp-sink`` on 127.0.0.1:<free port>,
  dumping every message to its own file (``-d``). It writes and closes
  that file *before* it answers the final dot, so a message it said 250
  for survives a SIGKILL of the sink. It can be SIGKILLed and restarted on
  the same port (by its own PID).
- ``LoadGenerator``: client threads (smtplib) sending numbered messages
  through Warden. Each message carries a unique token in its envelope,
  headers and last line; the outcome of each is recorded by the stage it
  reached (250, refused, connection lost before or after its content).
- ``check_invariants``: the promise, checked per token: 250 => at the
  backend; refused or lost before its content => not at the backend.
- ``peak_rss_kb``/``rss_kb``: VmHWM/VmRSS of a PID from /proc.
"""

import collections
import hashlib
import os
import random
import shutil
import signal
import smtplib
import subprocess
import tempfile
import threading
import time

from wardentest import TEST_USER, free_port, port_listening, wait_for

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"


# ---------------------------------------------------------------------------
# /proc
# ---------------------------------------------------------------------------

def _status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def peak_rss_kb(pid):
    """VmHWM (peak resident set size) of a process, in KiB."""
    return _status_kb(pid, "VmHWM")


def rss_kb(pid):
    """VmRSS (current resident set size) of a process, in KiB."""
    return _status_kb(pid, "VmRSS")


def open_fds(pid):
    """How many file descriptors a process has open."""
    return len(os.listdir("/proc/%d/fd" % pid))


def sanitized_binary(path):
    """True if the binary was built with AddressSanitizer (its memory
    figures then include shadow memory and the free quarantine)."""
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


# ---------------------------------------------------------------------------
# smtp-sink
# ---------------------------------------------------------------------------

class SmtpSink:
    """A real smtp-sink that dumps each message to a file in ``dump_dir``.

    ``kill()`` is a SIGKILL (a crash); ``start()`` brings it back on the
    same port. ``deliveries()`` parses the dump files."""

    def __init__(self, port=None, max_connections=2000, backlog=2000,
                 extra_args=()):
        if not os.path.exists(SMTP_SINK):
            raise RuntimeError("smtp-sink is not installed (postfix)")
        self.port = port or free_port()
        self.max_connections = max_connections
        self.backlog = backlog
        self.extra_args = list(extra_args)
        self.dir = tempfile.mkdtemp(prefix="warden-sink-")
        os.chmod(self.dir, 0o755)
        self.dump_dir = os.path.join(self.dir, "dump")
        os.mkdir(self.dump_dir)
        os.chmod(self.dump_dir, 0o777)      # written by TEST_USER as root
        self.log_path = os.path.join(self.dir, "sink.log")
        self.proc = None
        self.starts = 0
        self.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def start(self, timeout=10.0):
        cmd = [SMTP_SINK, "-d", os.path.join(self.dump_dir, "%H%M%S."),
               "-m", str(self.max_connections)] + self.extra_args
        if os.geteuid() == 0:
            cmd += ["-u", TEST_USER]
        cmd += ["127.0.0.1:%d" % self.port, str(self.backlog)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
        self.starts += 1

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("smtp-sink exited with %d: %s" % (
                    self.proc.returncode, self.log()))
            return port_listening(self.port)
        wait_for(up, timeout, message="smtp-sink did not listen")
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL, as a crash would; the dump files stay."""
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        self.kill()
        if os.environ.get("WARDEN_KEEP_TMP", "") in ("", "0"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def deliveries(self):
        """Parse the dump files: returns (complete, partial, corrupt) where
        complete is a Counter token -> complete copies, partial a list of
        files cut short (the sink died mid-message), corrupt a list of
        (file, why) for messages that are not what the client sent."""
        complete = collections.Counter()
        partial, corrupt = [], []
        for root, _, files in os.walk(self.dump_dir):
            for name in files:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    text = f.read().decode("latin-1")
                token, why = parse_dump(text)
                if token is None and why == "partial":
                    partial.append(path)
                elif why:
                    corrupt.append((path, why))
                else:
                    complete[token] += 1
        return complete, partial, corrupt


# ---------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------

TOKEN_HEADER = "X-Load-Token: "


def make_message(token, size):
    """The message for ``token``, about ``size`` bytes, LF line ends (the
    client sends CRLF). Its body is derived from the token, so the backend
    copy can be checked byte for byte; a line starting with "." tests dot
    stuffing, and the last line is END-<token>."""
    rnd = random.Random(token)
    lines = [TOKEN_HEADER + token,
             "From: <load@example.com>",
             "To: <t-%s@example.net>" % token,
             "Subject: load %s" % token,
             "Message-ID: <%s@load.warden.test>" % token,
             "X-Body-Sum: ",                 # filled below
             ""]
    body = [".leading dot %s" % token]
    total = 200
    n = 0
    while total < size:
        n += 1
        h = hashlib.sha1(("%s/%d" % (token, n)).encode()).hexdigest()
        line = (h + " " + h)[:rnd.randint(20, 76)]
        body.append(line)
        total += len(line) + 2
    body.append("END-" + token)
    digest = hashlib.sha1("\n".join(body).encode()).hexdigest()
    lines[5] = "X-Body-Sum: " + digest
    return "\n".join(lines + body) + "\n"


def wire_bytes(text):
    """LF text -> CRLF, dot-stuffed, with the final ".CRLF"."""
    out = []
    for line in text.split("\n")[:-1]:
        if line.startswith("."):
            line = "." + line
        out.append(line + "\r\n")
    return "".join(out).encode() + b".\r\n"


def parse_dump(text):
    """(token, None) for a complete, intact message in a smtp-sink dump
    file; (None, "partial") for one cut short; (token|None, why) for one
    that differs from what make_message() built."""
    i = text.find(TOKEN_HEADER)
    if i < 0:
        return None, "partial"               # died before the content
    token = text[i + len(TOKEN_HEADER):].split("\n", 1)[0]
    msg = text[i:]
    # smtp-sink ends a complete message with the final dot's LF (an empty
    # line), written just before the file is closed and 250 is sent.
    if not msg.endswith("\nEND-%s\n\n" % token):
        return None, "partial"
    msg = msg[:-1]
    head, sep, body = msg.partition("\n\n")
    if not sep:
        return token, "no header/body separator"
    sums = [l for l in head.split("\n") if l.startswith("X-Body-Sum: ")]
    digest = hashlib.sha1(body[:-1].encode("latin-1")).hexdigest()
    if len(sums) != 1 or sums[0] != "X-Body-Sum: " + digest:
        return token, "body differs from what the client sent"
    rcpt = "X-Rcpt-Args: <t-%s@example.net>" % token
    if rcpt not in text[:i].split("\n"):
        return token, "envelope recipient of another message"
    return token, None


# ---------------------------------------------------------------------------
# Outcomes
# ---------------------------------------------------------------------------

ACCEPTED = "accepted"            # 250 after the final dot
REFUSED = "refused"              # 4xx/5xx to MAIL, RCPT, DATA or the dot
LOST_BEFORE = "lost_before_data"  # connection lost before the content went
LOST_AFTER = "lost_after_data"   # lost after (some of) the content went
INDETERMINATE = "indeterminate"  # "451 4.4.2 backend lost" after the dot

# A backend that dies after storing a message but before its 250 leaves
# Warden unable to know: it answers 451 4.4.2 (never 250) and the client
# retries, which may make a duplicate. Only this reply to the final dot is
# treated as "may be at the backend"; every other refusal must not be.
BACKEND_LOST_REPLY = b"4.4.2"


class Outcome:
    __slots__ = ("token", "client", "status", "stage", "code", "reply", "t")

    def __init__(self, token, client, status, stage, code, reply, t):
        self.token, self.client, self.status = token, client, status
        self.stage, self.code, self.reply, self.t = stage, code, reply, t

    def __repr__(self):
        return "<%s %s at %s: %s %r>" % (self.token, self.status, self.stage,
                                        self.code, self.reply)


class LoadGenerator:
    """``clients`` threads, each opening SMTP sessions to 127.0.0.1:port
    and sending 1..``per_session`` messages per session until ``stop()``.

    ``sources``: a source address per client (e.g. 127.0.0.21), default
    127.0.0.1. ``sizes``: message sizes chosen at random. Outcomes are in
    ``outcomes`` (one per message token); session-level events (connect
    refused, 421 greeting) are counted in ``sessions``."""

    def __init__(self, port, clients=6, per_session=5, sources=None,
                 sizes=(600, 2000, 6000, 40000), tag="load", timeout=15.0,
                 pause=0.0):
        self.port = port
        self.nclients = clients
        self.per_session = per_session
        self.sources = sources or ["127.0.0.1"] * clients
        self.sizes = sizes
        self.tag = "%s%06x" % (tag, random.getrandbits(24))
        self.timeout = timeout
        self.pause = pause
        self.outcomes = []
        self.sessions = collections.Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self.errors = []

    # -- running -------------------------------------------------------------

    def start(self):
        for i in range(self.nclients):
            t = threading.Thread(target=self._run, args=(i,), daemon=True,
                                 name="load-%d" % i)
            self._threads.append(t)
            t.start()
        return self

    def stop(self, timeout=None):
        self._stop.set()
        for t in self._threads:
            t.join(timeout or self.timeout + 10)
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise AssertionError("load threads did not stop: %r" % alive)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _record(self, *args):
        o = Outcome(*args, t=time.monotonic())
        with self._lock:
            self.outcomes.append(o)
        return o

    def _count(self, what):
        with self._lock:
            self.sessions[what] += 1

    def _run(self, i):
        try:
            self._loop(i)
        except Exception as e:  # noqa: BLE001 - reported by the test
            with self._lock:
                self.errors.append("client %d: %r" % (i, e))

    def _loop(self, i):
        rnd = random.Random("%s-%d" % (self.tag, i))
        seq = 0
        src = self.sources[i % len(self.sources)]
        while not self._stop.is_set():
            s = smtplib.SMTP(timeout=self.timeout)
            try:
                s.source_address = (src, 0)
                try:
                    code, msg = s.connect("127.0.0.1", self.port)
                except ConnectionRefusedError:
                    self._count("connect refused")
                    time.sleep(0.05)
                    continue
                except (OSError, smtplib.SMTPException):
                    self._count("lost before greeting")
                    time.sleep(0.02)
                    continue
                if code != 220:
                    self._count("greeting %d" % code)
                    time.sleep(0.02)
                    continue
                try:
                    code, _ = s.ehlo("load%d.test" % i)
                except (OSError, smtplib.SMTPException):
                    self._count("lost before MAIL")
                    continue
                if code != 250:
                    self._count("EHLO %d" % code)
                    continue
                self._count("session")
                for _ in range(rnd.randint(1, self.per_session)):
                    if self._stop.is_set():
                        break
                    seq += 1
                    token = "%s-%d-%d" % (self.tag, i, seq)
                    if not self._one(s, i, token, rnd.choice(self.sizes)):
                        break
                    if self.pause:
                        time.sleep(self.pause)
                else:
                    try:
                        s.quit()
                    except (OSError, smtplib.SMTPException):
                        pass
            finally:
                s.close()

    @staticmethod
    def _rset(s):
        try:
            return s.rset()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False

    def _one(self, s, i, token, size):
        """One message; returns False when the session is over."""
        stage = "MAIL"
        try:
            code, msg = s.mail("load@example.com")
            if code != 250:
                self._record(token, i, REFUSED, stage, code, msg)
                return code != 421
            stage = "RCPT"
            code, msg = s.rcpt("t-%s@example.net" % token)
            if code != 250:
                self._record(token, i, REFUSED, stage, code, msg)
                return code != 421 and self._rset(s)
            stage = "DATA"
            s.putcmd("data")
            code, msg = s.getreply()
            if code != 354:
                self._record(token, i, REFUSED, stage, code, msg)
                return code != 421 and self._rset(s)
            stage = "content"
            s.send(wire_bytes(make_message(token, size)))
            stage = "final reply"
            code, msg = s.getreply()
        except (OSError, smtplib.SMTPException) as e:
            status = LOST_BEFORE if stage in ("MAIL", "RCPT", "DATA") \
                else LOST_AFTER
            self._record(token, i, status, stage, None, repr(e).encode())
            return False
        if code == 250:
            self._record(token, i, ACCEPTED, stage, code, msg)
            return True
        status = INDETERMINATE if code == 451 and \
            msg.startswith(BACKEND_LOST_REPLY) else REFUSED
        self._record(token, i, status, stage, code, msg)
        return code != 421

    # -- results ------------------------------------------------------------

    def by_status(self):
        c = collections.Counter(o.status for o in self.outcomes)
        return c

    def accepted_after(self, t):
        return sum(1 for o in self.outcomes
                   if o.status == ACCEPTED and o.t > t)


def check_invariants(outcomes, complete):
    """The promise, per token. ``outcomes``: Outcome objects; ``complete``:
    Counter token -> complete copies at the backend. Returns a list of
    violations (empty when the promise held):

    - a 250 for a message that is not at the backend (a false 250: loss);
    - a message at the backend that the client was refused, or whose
      session died before its content was sent;
    - a message at the backend that no client sent."""
    bad = []
    sent = {}
    for o in outcomes:
        sent[o.token] = o
        n = complete.get(o.token, 0)
        if o.status == ACCEPTED and n == 0:
            bad.append("250 but not at the backend: %r" % (o,))
        elif o.status in (REFUSED, LOST_BEFORE) and n:
            bad.append("refused/never sent but at the backend (%d): %r"
                       % (n, o))
    for token in complete:
        if token not in sent:
            bad.append("at the backend but never sent: %s" % token)
    return bad


def tally(outcomes, complete):
    """The figures for the report line."""
    by = collections.Counter(o.status for o in outcomes)
    tokens = {o.token for o in outcomes}
    delivered = sum(1 for t in tokens if complete.get(t))
    dups = sum(n - 1 for t, n in complete.items() if t in tokens and n > 1)
    return collections.OrderedDict([
        ("sent", len(outcomes)),
        ("250", by[ACCEPTED]),
        ("delivered", delivered),
        ("refused", by[REFUSED]),
        ("conn-lost", by[LOST_BEFORE] + by[LOST_AFTER]),
        ("lost-before-data", by[LOST_BEFORE]),
        ("lost-after-data", by[LOST_AFTER]),
        ("backend-lost-451", by[INDETERMINATE]),
        ("delivered-without-250", sum(
            1 for o in outcomes if o.status != ACCEPTED and
            complete.get(o.token))),
        ("duplicates", dups),
    ])


def tally_line(name, figures, extra=None):
    parts = ["%s=%s" % kv for kv in figures.items()]
    if extra:
        parts += ["%s=%s" % kv for kv in extra.items()]
    return "TALLY %s: %s" % (name, " ".join(parts))
