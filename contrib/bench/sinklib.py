"""A Postfix smtp-sink for the benchmarks that count messages at the sink
(milter.py, auth.py). The caller puts tests/functional on sys.path."""

import os
import re
import signal
import subprocess

import wardentest

SINK = "/usr/sbin/smtp-sink"


class Sink:
    """smtp-sink -c: its running counter line says how many messages."""

    def __init__(self, tmp, name):
        self.port = wardentest.free_port()
        self.out = os.path.join(tmp, "sink.%s.out" % name)
        with open(self.out, "wb") as f:
            self.proc = subprocess.Popen(
                [SINK, "-c", "-u", "nobody", "-m", "2000",
                 "127.0.0.1:%d" % self.port, "4096"],
                stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wardentest.wait_for(lambda: wardentest.port_listening(self.port),
                            message="smtp-sink")

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def count(self):
        with open(self.out, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            found = re.findall(rb"mesg=(\d+)", f.read())
        return int(found[-1]) if found else 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
