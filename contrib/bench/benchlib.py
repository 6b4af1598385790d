#!/usr/bin/python3
"""Small helpers for contrib/bench/run.sh (Python 3 standard library only).

  benchlib.py freeport
      Print a TCP port on 127.0.0.1 that is free right now.

  benchlib.py wait-banner PORT TIMEOUT [PID]
      Connect to 127.0.0.1:PORT until it answers with a 220 greeting, or
      TIMEOUT seconds pass, or process PID (when given) exits (exit 1). Used to know a server is ready: a
      listening socket is not enough for a proxy, which must also reach
      its backend before it greets.

  benchlib.py idle PID PORT COUNT
      Read VmRSS of PID, open COUNT connections to 127.0.0.1:PORT, read
      each 220 greeting and keep the sockets open, read VmRSS again, then
      close them all. Prints "before_kb after_kb opened" on stdout.

  benchlib.py sink-count FILE
      Print the last "mesg=N" counter that smtp-sink -c wrote to FILE
      (0 if none yet).
  benchlib.py concurrent PORT CONNS MESSAGES_PER_CONN SIZE TIMEOUT [PID[,PID...]]
      Open CONNS connections to 127.0.0.1:PORT (ramped up, at most 100
      waiting for their 220 at a time), keep them all open, then on all of
      them at once run MESSAGES_PER_CONN transactions with a SIZE-byte
      message (EHLO once; MAIL, RCPT, DATA, message, "." each; QUIT at
      the end; one command at a time, no pipelining). One process, one
      selectors loop. TIMEOUT bounds the whole run, in seconds. With PIDs,
      also reads the first one's VmRSS and open descriptors and every
      one's CPU time. Prints one line of key=value figures on stdout
      (conns accepted errors ramp_s elapsed_s rate p50_ms p99_ms max_ms
      client_us cpu_us threads_us idle_pct rss_before_kb rss_open_kb
      rss_peak_kb rss_after_kb fds_before fds_after (the last two 1 s
      after the clients closed); cpu_us and client_us are CPU
      microseconds per accepted message, cpu_us one figure per PID,
      comma-separated; threads_us the CPU microseconds of each thread of
      the first PID over the transactions, largest first) and
      the commonest error reasons on stderr; exit 1 when no message got
      through.
"""

import errno
import os
import re
import resource
import select
import selectors
import socket
import sys
import time


def freeport():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def read_banner(sock, deadline):
    """Read up to the end of a (possibly multi-line) 220 greeting."""
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no greeting")
        sock.settimeout(left)
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before greeting: %r" % buf)
        buf += chunk
        # The last line of a reply has a space after the code.
        lines = buf.split(b"\r\n")
        for line in lines[:-1]:
            if len(line) >= 4 and line[3:4] == b" ":
                if not line.startswith(b"220"):
                    raise ConnectionError("greeting: %r" % line)
                return buf


def running(pid):
    """True while PID exists and is not a zombie waiting to be reaped."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_banner(port, timeout, pid=None):
    deadline = time.monotonic() + float(timeout)
    last = "timeout"
    while time.monotonic() < deadline:
        if pid is not None and not running(int(pid)):
            print("process %s exited" % pid, file=sys.stderr)
            return 1
        try:
            with socket.create_connection(("127.0.0.1", int(port)), timeout=1) as s:
                read_banner(s, min(deadline, time.monotonic() + 5))
                # Say goodbye so the server does not log a lost connection.
                try:
                    s.sendall(b"QUIT\r\n")
                    s.settimeout(1)
                    s.recv(512)
                except OSError:
                    pass
                return 0
        except (OSError, TimeoutError, ConnectionError) as e:
            last = str(e)
            time.sleep(0.05)
    print("no 220 greeting on port %s: %s" % (port, last), file=sys.stderr)
    return 1


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def idle(pid, port, count):
    pid, port, count = int(pid), int(port), int(count)
    time.sleep(0.5)  # let the freshly started process settle
    before = vmrss_kb(pid)
    socks = []
    try:
        # Connect in batches and read each greeting: a greeting proves the
        # proxy has set up the session (and its backend connection), which
        # is the state whose memory we want to measure.
        deadline = time.monotonic() + 60
        batch = 50
        for start in range(0, count, batch):
            new = []
            for _ in range(min(batch, count - start)):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                new.append(s)
                socks.append(s)
            for s in new:
                read_banner(s, deadline)
        time.sleep(1.0)  # let the allocator and the event loop settle
        after = vmrss_kb(pid)
        # Check the sessions are still there (nobody hung up on us).
        # poll, not select: select cannot take descriptors >= 1024.
        poller = select.poll()
        for s in socks:
            poller.register(s, select.POLLIN)
        alive = len(socks) - len(poller.poll(0))
        print(before, after, alive)
        return 0
    except (OSError, TimeoutError, ConnectionError) as e:
        print("idle: after %d connections: %s" % (len(socks), e), file=sys.stderr)
        return 1
    finally:
        for s in socks:
            s.close()


def sink_count(path):
    try:
        with open(path, "rb") as f:
            # The file grows by a counter line per event; the tail is enough.
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            data = f.read()
    except OSError:
        data = b""
    counts = re.findall(rb"mesg=(\d+)", data)
    print(int(counts[-1]) if counts else 0)
    return 0


# ---- concurrent: many open connections, transactions on all at once -------

# Session states (one reply outstanding at a time: no pipelining).
_CONNECTING, _BANNER, _EHLO, _MAIL, _RCPT, _DATA, _DOT, _QUIT = range(8)
_STATE_NAMES = ("connect", "banner", "EHLO", "MAIL", "RCPT", "DATA",
                "end of data", "QUIT")


def _message(size):
    """A message of about SIZE bytes, CRLF lines, no line starting with
    '.', followed by the end-of-data line."""
    head = (b"From: <sender@example.com>\r\nTo: <rcpt@example.com>\r\n"
            b"Subject: warden concurrent benchmark\r\n\r\n")
    line = b"x" * 78 + b"\r\n"
    body = bytearray(head)
    while len(body) + len(line) <= size:
        body += line
    if len(body) < size:
        body += b"y" * max(0, size - len(body) - 2) + b"\r\n"
    return bytes(body) + b".\r\n"


def _proc_cpu_us(pid):
    """utime + stime of PID so far, in microseconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) * 1000000 // tick


def _threads_cpu_us(pid):
    """{tid: utime + stime in microseconds} for every thread of PID."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[tid] = (int(fields[11]) + int(fields[12])) * 1000000 // tick
    return out


def _machine_idle_us():
    with open("/proc/stat") as f:
        fields = f.readline().split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[4]) + int(fields[5])) * 1000000 // tick


class _Sess:
    __slots__ = ("sock", "state", "buf", "out", "sent", "t_dot", "events")

    def __init__(self, sock):
        self.sock = sock
        self.state = _CONNECTING
        self.buf = b""
        self.out = b""
        self.sent = 0
        self.t_dot = 0.0
        self.events = 0


def concurrent(port, conns, per_conn, size, timeout, pid=None):
    """Open CONNS connections to 127.0.0.1:PORT (at most WINDOW at a time
    waiting for their 220), keep them all open, then run PER_CONN
    transactions of SIZE bytes on every one of them at once (EHLO once,
    then MAIL, RCPT, DATA, message, '.' per transaction, QUIT at the end),
    one command at a time. Prints one line of key=value figures."""
    port, conns, per_conn, size = int(port), int(conns), int(per_conn), int(size)
    timeout = float(timeout)
    pids = [int(x) for x in pid.split(",")] if pid else []
    pid = pids[0] if pids else None
    window = 100
    msg = _message(size)
    mail = b"MAIL FROM:<sender@example.com>\r\n"
    rcpt = b"RCPT TO:<rcpt@example.com>\r\n"
    errors = {}          # reason -> count
    err_total = 0
    sel = selectors.DefaultSelector()
    R, W = selectors.EVENT_READ, selectors.EVENT_WRITE
    deadline = time.monotonic() + timeout

    def fail(s, reason):
        nonlocal err_total
        err_total += 1
        errors[reason] = errors.get(reason, 0) + 1
        close(s)

    def close(s):
        if s.events:
            sel.unregister(s.sock)
            s.events = 0
        s.sock.close()
        s.state = -1

    def want(s, events):
        if events != s.events:
            if s.events == 0:
                sel.register(s.sock, events, s)
            elif events == 0:
                sel.unregister(s.sock)
            else:
                sel.modify(s.sock, events, s)
            s.events = events

    def flush(s):
        """Write what is pending; True when all of it is written."""
        try:
            n = s.sock.send(s.out)
        except BlockingIOError:
            n = 0
        s.out = s.out[n:]
        if s.out:
            want(s, R | W)
            return False
        want(s, R)
        return True

    def send(s, data, state):
        s.state = state
        s.out = data
        return flush(s)

    def reply(s):
        """A complete reply from S's buffer as (code, last line), or None."""
        start = 0
        buf = s.buf
        while True:
            end = buf.find(b"\r\n", start)
            if end < 0:
                return None
            if end - start >= 4 and buf[start + 3:start + 4] == b" " or end - start == 3:
                s.buf = buf[end + 2:]
                return buf[start:start + 3], buf[start:end]
            start = end + 2

    rss_before = vmrss_kb(pid) if pid else 0
    fds_before = len(os.listdir("/proc/%d/fd" % pid)) if pid else 0

    # ---- ramp: connect and read the greetings ----------------------------
    sessions = []
    waiting = 0          # connecting or waiting for the greeting
    todo = conns
    t_ramp = time.monotonic()
    while (todo or waiting) and time.monotonic() < deadline:
        while todo and waiting < window:
            todo -= 1
            sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sk.setblocking(False)
            s = _Sess(sk)
            rc = sk.connect_ex(("127.0.0.1", port))
            if rc not in (0, errno.EINPROGRESS):
                sk.close()
                err_total += 1
                reason = "connect: " + os.strerror(rc)
                errors[reason] = errors.get(reason, 0) + 1
                continue
            want(s, W)
            waiting += 1
        for key, ev in sel.select(max(0.0, min(1.0, deadline - time.monotonic()))):
            s = key.data
            if s.state == _CONNECTING:
                rc = s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                waiting -= 1
                if rc:
                    fail(s, "connect: " + os.strerror(rc))
                    continue
                waiting += 1
                s.state = _BANNER
                want(s, R)
                continue
            try:
                data = s.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                waiting -= 1
                fail(s, "banner: " + e.strerror)
                continue
            if not data:
                waiting -= 1
                fail(s, "banner: connection closed")
                continue
            s.buf += data
            r = reply(s)
            if r is None:
                continue
            waiting -= 1
            if r[0] != b"220":
                fail(s, "banner: " + r[1][:60].decode("ascii", "replace"))
                continue
            # Greeted: stay quiet (no events) until the transactions start.
            want(s, 0)
            sessions.append(s)
    ramp_secs = time.monotonic() - t_ramp
    if todo or waiting:
        n = todo + waiting
        err_total += n
        errors["no greeting before the time limit"] = n
        for key in list(sel.get_map().values()):
            close(key.data)
    established = len(sessions)

    # A moment for the server to settle, then its memory with all open.
    time.sleep(1.0)
    rss_open = vmrss_kb(pid) if pid else 0
    rss_peak = rss_open
    # Still all there? (A server that hung up shows as readable.)
    for s in sessions:
        want(s, R)
    for key, ev in sel.select(0):
        s = key.data
        try:
            data = s.sock.recv(65536)
        except OSError:
            data = b""
        fail(s, "idle: " + (data[:60].decode("ascii", "replace").strip() or "connection closed"))
    sessions = [s for s in sessions if s.state == _BANNER]

    # ---- transactions on all connections at once -------------------------
    lat = []
    done = 0              # messages accepted
    active = 0
    cpu0 = [_proc_cpu_us(x) for x in pids]
    thr0 = _threads_cpu_us(pid) if pid else {}
    idle0 = _machine_idle_us()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    t_last = t0
    next_sample = t0 + 0.25
    counts = {}
    for s in sessions:
        counts[s] = 0
        active += 1
        try:
            send(s, b"EHLO bench.example.com\r\n", _EHLO)
        except OSError as e:
            active -= 1
            fail(s, "EHLO: send: %s" % e.strerror)
    while active and time.monotonic() < deadline:
        now = time.monotonic()
        if pid and now >= next_sample:
            next_sample = now + 0.25
            try:
                rss_peak = max(rss_peak, vmrss_kb(pid))
            except (OSError, RuntimeError):
                pass
        for key, ev in sel.select(max(0.0, min(0.25, deadline - now))):
            s = key.data
            if ev & W and s.out:
                try:
                    if not flush(s):
                        continue
                except OSError as e:
                    active -= 1
                    fail(s, "%s: send: %s" % (_STATE_NAMES[s.state], e.strerror))
                    continue
                if s.state == _DOT:
                    s.t_dot = time.monotonic()
                if not ev & R:
                    continue
            try:
                data = s.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                active -= 1
                fail(s, "%s: %s" % (_STATE_NAMES[s.state], e.strerror))
                continue
            if not data:
                active -= 1
                fail(s, "%s: connection closed" % _STATE_NAMES[s.state])
                continue
            s.buf += data
            r = reply(s)
            if r is None:
                continue
            code, line = r
            st = s.state
            try:
                if st == _EHLO and code == b"250":
                    send(s, mail, _MAIL)
                elif st == _MAIL and code == b"250":
                    send(s, rcpt, _RCPT)
                elif st == _RCPT and code == b"250":
                    send(s, b"DATA\r\n", _DATA)
                elif st == _DATA and code == b"354":
                    if send(s, msg, _DOT):
                        s.t_dot = time.monotonic()
                elif st == _DOT and code == b"250":
                    t = time.monotonic()
                    lat.append(t - s.t_dot)
                    done += 1
                    t_last = t
                    counts[s] += 1
                    if counts[s] < per_conn:
                        send(s, mail, _MAIL)
                    else:
                        send(s, b"QUIT\r\n", _QUIT)
                elif st == _QUIT:
                    active -= 1
                    close(s)
                else:
                    active -= 1
                    fail(s, "%s: %s" % (_STATE_NAMES[st], line[:60].decode("ascii", "replace")))
            except OSError as e:
                active -= 1
                fail(s, "%s: send: %s" % (_STATE_NAMES[s.state], e.strerror))
    t1 = time.monotonic()
    cpu1 = [_proc_cpu_us(x) for x in pids]
    if pid:
        try:
            rss_peak = max(rss_peak, vmrss_kb(pid))
        except (OSError, RuntimeError):
            pass
    thr1 = _threads_cpu_us(pid) if pid else {}
    threads = sorted((thr1[t] - thr0[t] for t in thr1 if t in thr0), reverse=True)
    idle1 = _machine_idle_us()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    if active:
        err_total += active
        errors["unfinished at the time limit"] = active
    for key in list(sel.get_map().values()):
        close(key.data)
    for s in sessions:
        if s.state != -1:
            s.sock.close()

    # After the clients have gone: does the server let go of its sessions?
    fds_after = rss_after = 0
    if pid:
        time.sleep(1.0)
        try:
            fds_after = len(os.listdir("/proc/%d/fd" % pid))
            rss_after = vmrss_kb(pid)
        except (OSError, RuntimeError):
            fds_after = -1

    elapsed = t_last - t0
    lat.sort()

    def pct(p):
        if not lat:
            return 0.0
        return 1000 * lat[min(len(lat) - 1, max(0, int(round(p * len(lat) + 0.5)) - 1))]

    client_us = ((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)) * 1e6
    ncpu = os.cpu_count() or 1
    out = {
        "conns": established,
        "accepted": done,
        "errors": err_total,
        "ramp_s": "%.2f" % ramp_secs,
        "elapsed_s": "%.2f" % elapsed,
        "rate": "%.0f" % (done / elapsed if elapsed > 0 else 0),
        "p50_ms": "%.2f" % pct(0.50),
        "p99_ms": "%.2f" % pct(0.99),
        "max_ms": "%.2f" % (1000 * lat[-1] if lat else 0),
        "client_us": "%.0f" % (client_us / done if done else 0),
        "cpu_us": ",".join("%.0f" % ((b - a) / done if done else 0)
                           for a, b in zip(cpu0, cpu1)) or "-",
        "threads_us": ",".join(str(x) for x in threads) or "-",
        "idle_pct": "%.0f" % (100 * (idle1 - idle0) / 1e6 / ((t1 - t0) * ncpu)
                               if t1 > t0 else 0),
        "rss_before_kb": rss_before,
        "rss_open_kb": rss_open,
        "rss_peak_kb": rss_peak,
        "rss_after_kb": rss_after,
        "fds_before": fds_before,
        "fds_after": fds_after,
    }
    print(" ".join("%s=%s" % kv for kv in out.items()))
    for reason, n in sorted(errors.items(), key=lambda kv: -kv[1])[:5]:
        print("concurrent: %d x %s" % (n, reason), file=sys.stderr)
    return 0 if done else 1


def main(argv):
    cmds = {
        "freeport": (freeport, (0,)),
        "wait-banner": (wait_banner, (2, 3)),
        "idle": (idle, (3,)),
        "sink-count": (sink_count, (1,)),
        "concurrent": (concurrent, (5, 6)),
    }
    if len(argv) < 2 or argv[1] not in cmds or len(argv) - 2 not in cmds[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    fn, _ = cmds[argv[1]]
    return fn(*argv[2:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
