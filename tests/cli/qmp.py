"""QEMU's monitor for the tests, without nook: connect, then ask.

As a module (sys.path has this directory): m = Qmp(path); m.ask(cmd, args)
gives the reply ("return" or "error"). As a program: qmp.py SOCKET CMD
[ARGS-JSON] [CMD [ARGS-JSON]]... asks each in turn and prints each
"return" as a line of JSON (an "error" ends it, exit 1).
"""
import json
import socket
import sys


class Qmp:
    def __init__(self, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.f = self.sock.makefile("rw")
        self.f.readline()  # the greeting
        self.ask("qmp_capabilities")

    def ask(self, cmd, args=None):
        m = {"execute": cmd}
        if args:
            m["arguments"] = args
        self.f.write(json.dumps(m) + "\n")
        self.f.flush()
        while True:  # events are skipped
            r = json.loads(self.f.readline())
            if "return" in r or "error" in r:
                return r

    def close(self):
        """QEMU's monitor serves one client at a time: let it go."""
        self.f.close()
        self.sock.close()


if __name__ == "__main__":
    m = Qmp(sys.argv[1])
    words = sys.argv[2:]
    while words:
        cmd, words = words[0], words[1:]
        args = None
        if words and words[0].startswith("{"):
            args, words = json.loads(words[0]), words[1:]
        r = m.ask(cmd, args)
        if "error" in r:
            print(json.dumps(r["error"]), file=sys.stderr)
            sys.exit(1)
        print(json.dumps(r["return"]))
