#!/usr/bin/python3
"""Restarts and reloads of natguard under a Postfix-like load.

CLIENTS connections, each as one smtpd process keeps its policy
connection: a request, its reply, the next request at once.  A request
that fails (connection refused, closed or reset before its reply) is
tried once more on a new connection after 1 s, as Postfix's attr_clnt
does (silently, for EPIPE, ECONNRESET and a closed connection), and
counted: a first-try failure is a 1 s stall for an SMTP client, a failure
after the retry Postfix's "451 4.3.5 Server configuration problem".

Meanwhile natguard is restarted RESTARTS times as a service manager
does it (SIGTERM, wait for the exit, start again, wait for READY=1), in
one of two ways:
  bare     natguard binds `listen` itself: between the old process's exit
           and the new one's bind, connections are refused;
  systemd  this script holds the listening socket, as natguard.socket
           does, and hands it to each process (LISTEN_PID, LISTEN_FDS):
           connections wait in the backlog;
or, with --reload, sent SIGHUP RESTARTS times.

Prints one line a mode:
  restart-MODE: N restarts, R requests, F first-try failures (at most M
  in one restart), A failed after the retry, C refused, slowest answer S ms
Figures, not a pass or fail: make bench prints them.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

REQUEST = ("request=smtpd_access_policy\nprotocol_state=RCPT\n"
           "protocol_name=ESMTP\nclient_address=192.0.2.%d\n"
           "helo_name=mail.example.org\nsender=a@example.org\n"
           "recipient=b@example.com\ninstance=%x.%x\n\n")


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.first = 0
        self.after_retry = 0
        self.refused = 0
        self.slowest = 0.0
        self.epoch = 0          # restarts so far
        self.per_epoch = {}

    def fail(self, refused):
        with self.lock:
            self.first += 1
            if refused:
                self.refused += 1
            self.per_epoch[self.epoch] = self.per_epoch.get(self.epoch,
                                                            0) + 1


class Client(threading.Thread):
    def __init__(self, n, port, stats, stop):
        super().__init__(daemon=True)
        self.n, self.port, self.stats, self.stop = n, port, stats, stop
        self.sock = None
        self.buf = b""
        self.seq = 0

    def connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), 10)
        self.sock.settimeout(30)
        self.buf = b""

    def once(self, data):
        """One try: the reply, or an exception."""
        if self.sock is None:
            self.connect()
        self.sock.sendall(data)
        while b"\n\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError("closed")
            self.buf += chunk
        reply, _, self.buf = self.buf.partition(b"\n\n")
        return reply

    def drop(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = None

    def run(self):
        while not self.stop.is_set():
            self.seq += 1
            data = (REQUEST % (self.n % 250 + 1, self.n, self.seq)).encode()
            start = time.monotonic()
            try:
                self.once(data)
            except (OSError, EOFError) as e:
                self.drop()
                self.stats.fail(isinstance(e, ConnectionRefusedError))
                time.sleep(1)
                try:
                    self.once(data)
                except (OSError, EOFError) as e2:
                    self.drop()
                    with self.stats.lock:
                        self.stats.after_retry += 1
                        if isinstance(e2, ConnectionRefusedError):
                            self.stats.refused += 1
                    continue
            took = time.monotonic() - start
            with self.stats.lock:
                self.stats.requests += 1
                self.stats.slowest = max(self.stats.slowest, took)
        self.drop()


class Notify:
    """$NOTIFY_SOCKET: READY=1 from each process."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.path = path

    def wait_ready(self, timeout=20):
        self.sock.settimeout(timeout)
        while True:
            msg = self.sock.recv(4096).decode(errors="replace")
            if "READY=1" in msg.split("\n"):
                return


def start(args, conf, notify, lsock):
    env = dict(os.environ, NOTIFY_SOCKET=notify.path)
    if lsock is None:
        p = subprocess.Popen([args.natguard, "-c", conf], env=env,
                             stderr=subprocess.DEVNULL)
    else:
        fd = lsock.fileno()
        # The socket at descriptor 3 and LISTEN_PID the process's own, as
        # systemd passes it.
        move = "exec 3<&%d %d<&-; " % (fd, fd) if fd != 3 else ""
        p = subprocess.Popen(
            ["sh", "-c", move + 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" -c '
             '"$1"', args.natguard, conf],
            env=env, pass_fds=[fd], stderr=subprocess.DEVNULL)
    notify.wait_ready()
    return p


def run(args, mode):
    tmp = tempfile.mkdtemp(prefix="ng-restart.")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    lsock = None
    if mode == "systemd":
        s.listen(4096)
        lsock = s
    else:
        s.close()
    conf = os.path.join(tmp, "natguard.conf")
    with open(conf, "w") as f:
        f.write("listen = inet:127.0.0.1:%d\nlog = stderr\nlog_level = "
                "warning\ngateways = none\nmynetworks = none\nstate_dir =\n"
                "spf = no\n" % port)
    notify = Notify(os.path.join(tmp, "notify"))
    stats, stop = Stats(), threading.Event()
    p = start(args, conf, notify, lsock)
    clients = [Client(i, port, stats, stop) for i in range(args.clients)]
    for c in clients:
        c.start()
    time.sleep(args.settle)
    for i in range(args.restarts):
        with stats.lock:
            stats.epoch = i + 1
        if args.reload:
            p.send_signal(signal.SIGHUP)
            notify.wait_ready()
        else:
            p.send_signal(signal.SIGTERM)
            p.wait()
            p = start(args, conf, notify, lsock)
        time.sleep(args.settle)
    stop.set()
    for c in clients:
        c.join(5)
    p.send_signal(signal.SIGTERM)
    p.wait()
    label = "reload" if args.reload else "restart-" + mode
    worst = max(stats.per_epoch.values()) if stats.per_epoch else 0
    print("%s: %d %s, %d requests, %d first-try failures (at most %d in one "
          "%s), %d failed after the retry, %d refused, slowest answer %.0f ms"
          % (label, args.restarts, "reloads" if args.reload else "restarts",
             stats.requests, stats.first, worst,
             "reload" if args.reload else "restart", stats.after_retry,
             stats.refused, stats.slowest * 1000))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--natguard", default=os.environ.get("NATGUARD",
                                                         "src/natguard"))
    ap.add_argument("--restarts", type=int, default=20)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--settle", type=float, default=0.5)
    ap.add_argument("--reload", action="store_true")
    ap.add_argument("modes", nargs="*", default=["bare", "systemd"])
    args = ap.parse_args()
    for mode in args.modes:
        run(args, mode)


main()
