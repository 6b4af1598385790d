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
"""

import re
import select
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


def main(argv):
    cmds = {
        "freeport": (freeport, (0,)),
        "wait-banner": (wait_banner, (2, 3)),
        "idle": (idle, (3,)),
        "sink-count": (sink_count, (1,)),
    }
    if len(argv) < 2 or argv[1] not in cmds or len(argv) - 2 not in cmds[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    fn, _ = cmds[argv[1]]
    return fn(*argv[2:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
