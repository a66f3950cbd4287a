#!/usr/bin/python3
"""After a handover, does natguard's close reach the client?

Opens N policy connections to HOST:PORT, asks one request on each, runs
COMMAND (a restart that hands them over), asks again on each (served by
the new process), then ends each the way CASE says and times the EOF:
  protocol  a line that is no attribute: natguard closes at once;
  idle      nothing more: natguard closes at idle_timeout;
  shutdown  COMMAND stops natguard without a store: nothing more is
            asked, the stop itself must close them.
Prints one line:
  closecheck-CASE: N connections, A answered after the handover, E saw EOF
  within LIMIT s (slowest S ms)
"""

import argparse
import socket
import subprocess
import time

REQUEST = ("request=smtpd_access_policy\nprotocol_state=RCPT\n"
           "protocol_name=ESMTP\nclient_address=192.0.2.%d\n"
           "helo_name=mail.example.org\nsender=a@example.org\n"
           "recipient=b@example.com\ninstance=%x\n\n")


def ask(s, n):
    s.sendall((REQUEST % (n % 250 + 1, n)).encode())
    buf = b""
    while b"\n\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise EOFError("closed")
        buf += chunk


def eof_after(s, limit):
    """Seconds until EOF (or a reset), or None within limit."""
    start = time.monotonic()
    s.settimeout(limit)
    try:
        while s.recv(4096):
            pass
    except socket.timeout:
        return None
    except OSError:
        pass
    return time.monotonic() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connect", required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--limit", type=float, default=2.0)
    ap.add_argument("case", choices=["protocol", "idle", "shutdown"])
    a = ap.parse_args()
    host, _, port = a.connect.rpartition(":")
    socks = []
    for i in range(a.connections):
        s = socket.create_connection((host, int(port)), 10)
        s.settimeout(10)
        ask(s, i)
        socks.append(s)
    subprocess.run(a.command, shell=True, check=True)
    answered = 0
    for i, s in enumerate(socks):
        if a.case == "shutdown":
            break
        try:
            ask(s, 100 + i)
            answered += 1
        except (OSError, EOFError):
            pass
    seen, slowest = 0, 0.0
    for s in socks:
        if a.case == "protocol":
            try:
                s.sendall(b"this line is no attribute\n")
            except OSError:
                pass
        t = eof_after(s, a.limit)
        if t is not None:
            seen += 1
            slowest = max(slowest, t)
        s.close()
    print("closecheck-%s: %d connections, %d answered after the handover, "
          "%d saw EOF within %g s (slowest %.0f ms)"
          % (a.case, a.connections, answered, seen, a.limit,
             slowest * 1000))


if __name__ == "__main__":
    main()
