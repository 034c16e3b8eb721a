#!/usr/bin/env python3
"""nook console on a real terminal (a pty): raw mode while attached, a
newline brings the login prompt, Ctrl-] detaches with exit 0, SIGTERM
ends it too, and each time the terminal's settings come back as they were.
Usage: console-pty.py NOOK VM. Prints one line per check; exit 1 on any
failure."""
import json, os, pty, select, signal, subprocess, sys, termios, time

nook, vm = sys.argv[1], sys.argv[2]
failed = 0


def check(what, cond, detail=""):
    global failed
    print(("ok   " if cond else "FAIL ") + what + ("" if cond else ": " + detail))
    failed += not cond


def read_until(fd, want, timeout):
    got, end = b"", time.time() + timeout
    while want not in got and time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
    return got


def attach():
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    p = subprocess.Popen([nook, "console", vm], stdin=slave, stdout=slave,
                         stderr=slave, start_new_session=True)
    banner = read_until(master, b"detaches", 20)
    return master, slave, before, p, banner


# 1. attach, raw mode, a newline gets the login prompt, Ctrl-] detaches
master, slave, before, p, banner = attach()
check("attach says how to detach", b"Ctrl-] detaches" in banner, repr(banner))
end = time.time() + 5  # the banner comes just before the switch to raw
while time.time() < end:
    raw = termios.tcgetattr(slave)
    if not raw[3] & (termios.ICANON | termios.ECHO | termios.ISIG):
        break
    time.sleep(0.05)
check("the terminal is raw while attached",
      not raw[3] & (termios.ICANON | termios.ECHO | termios.ISIG), str(raw[3]))
os.write(master, b"\r")
got = read_until(master, b"login:", 30)
check("a newline brings the login prompt", b"login:" in got, repr(got[-200:]))
# what is typed before Ctrl-] in the same read (a paste) reaches the
# guest first: its newline brings one more login prompt, in the log
vmdir = json.loads(subprocess.run([nook, "local", "status", vm, "--json"],
                                  capture_output=True).stdout)["dir"]


def prompts():
    with open(os.path.join(vmdir, "console.log"), "rb") as f:
        return f.read().count(b"login:")


time.sleep(2)  # the prompt the newline above brought, whole in the log
had = prompts()
os.write(master, b"\r\x1d")
try:
    rc = p.wait(15)
except subprocess.TimeoutExpired:
    p.kill()
    rc = "hung"
check("Ctrl-] detaches with exit 0", rc == 0, str(rc))
end = time.time() + 30
while prompts() <= had and time.time() < end:
    time.sleep(0.5)
check("what was typed before Ctrl-] reached the guest", prompts() > had,
      "%d prompts, %d before" % (prompts(), had))
check("the terminal is restored after detach",
      termios.tcgetattr(slave) == before)
os.close(master)
os.close(slave)

# 2. SIGTERM while attached: the terminal still comes back
master, slave, before, p, banner = attach()
check("attached again", b"detaches" in banner, repr(banner))
p.send_signal(signal.SIGTERM)
try:
    p.wait(15)
    ended = True
except subprocess.TimeoutExpired:
    p.kill()
    ended = False
check("SIGTERM ends the console", ended)
check("the terminal is restored after SIGTERM",
      termios.tcgetattr(slave) == before)
os.close(master)
os.close(slave)

# 3. `nook console vm | grep -m1 login:` typed at a terminal: once grep
# has its line and goes, nook's next write is a broken pipe (SIGPIPE),
# and the terminal it made raw must come back as it was.
master, slave = pty.openpty()
before = termios.tcgetattr(slave)
p = subprocess.Popen([nook, "console", vm], stdin=slave,
                     stdout=subprocess.PIPE, stderr=slave,
                     start_new_session=True)
g = subprocess.Popen(["grep", "-m1", "login:"], stdin=p.stdout,
                     stdout=subprocess.PIPE)
p.stdout.close()
read_until(master, b"detaches", 20)
# a prompt has no newline of its own: the next one's ends its line, and
# the one after is written into the pipe grep has left
end = time.time() + 60
while p.poll() is None and time.time() < end:
    os.write(master, b"\r")
    read_until(master, b"\0", 1)
    time.sleep(1)
if p.poll() is None:
    p.kill()
rc = p.wait()
got = g.communicate(timeout=15)[0]
check("grep -m1 got the login prompt through the pipe", b"login:" in got,
      repr(got[-200:]))
check("nook ends of the broken pipe (SIGPIPE)", rc == -signal.SIGPIPE,
      str(rc))
check("the terminal is restored after the broken pipe",
      termios.tcgetattr(slave) == before)
os.close(master)
os.close(slave)
sys.exit(1 if failed else 0)
