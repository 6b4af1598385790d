"""A real redis-server for tests, on 127.0.0.1 and a free port, started
and stopped by its own PID (never pkill)."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from wardentest import free_port, wait_for

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    def __init__(self, port=None, unix_socket=False):
        if not os.path.exists(REDIS):
            raise RuntimeError("redis-server is not installed "
                               "(contrib/install-deps.sh installs it)")
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="warden-redis-")
        # Warden drops root (user: nobody) before it connects
        os.chmod(self.dir, 0o711)
        self.socket_path = (os.path.join(self.dir, "redis.sock")
                            if unix_socket else None)
        self.proc = None
        self.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    @property
    def unix_address(self):
        """Warden's store.redis for the Unix socket (unix_socket=True)."""
        return "unix:" + self.socket_path

    def start(self):
        log = open(os.path.join(self.dir, "redis.log"), "ab")
        self.proc = subprocess.Popen(
            [REDIS, "--bind", "127.0.0.1", "--port", str(self.port),
             "--save", "", "--appendonly", "no", "--dir", self.dir,
             "--enable-debug-command", "local"]  # DEBUG SLEEP in tests
            + (["--unixsocket", self.socket_path, "--unixsocketperm", "777"]
               if self.socket_path else []),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        wait_for(self.ping, 10, message="redis-server did not start")

    def ping(self):
        try:
            return self.command("PING") == "+PONG"
        except OSError:
            return False

    def command(self, *args):
        """One command in RESP; returns the first reply line."""
        msg = "*%d\r\n" % len(args) + "".join(
            "$%d\r\n%s\r\n" % (len(str(a)), a) for a in args)
        with socket.create_connection(("127.0.0.1", self.port), 2) as s:
            s.sendall(msg.encode())
            return s.recv(65536).split(b"\r\n")[0].decode()

    def keys(self, pattern="*"):
        with socket.create_connection(("127.0.0.1", self.port), 2) as s:
            s.sendall(b"*2\r\n$4\r\nKEYS\r\n$%d\r\n%s\r\n"
                      % (len(pattern), pattern.encode()))
            time.sleep(0.05)
            data = s.recv(1 << 20)
        return [l.decode() for l in data.split(b"\r\n")[2::2] if l]

    def kill(self):
        """Stop at once (SIGKILL), as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
