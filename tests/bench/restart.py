#!/usr/bin/python3
"""Restarts and reloads of natguard under a Postfix-like load.

CLIENTS connections, each as one smtpd process keeps its policy
connection: a request, its reply, the next request at once (or after
--pause ms, a quieter MX).  Before each request on a kept connection it
is tested for readability, and one the server closed is replaced
silently, as attr_clnt does.  A request that fails (connection refused, closed or reset before its reply) is
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
  handover the same, and the descriptor store of FileDescriptorStoreMax=
           ($FDSTORE): the stopping process stores its idle connections,
           the next one is handed them and serves them on;
or, with --reload, sent SIGHUP RESTARTS times; or
  external natguard under a real systemd: --connect HOST:PORT, and
           --command restarts (or reloads) it and returns when done.

Prints one line a mode:
  restart-MODE: N restarts, R requests, F first-try failures (at most M
  in one restart), A failed after the retry, C refused, slowest answer S ms,
  restart median D ms (slowest E ms)
Figures, not a pass or fail: make bench prints them.
"""

import argparse
import os
import select
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
        self.durations = []     # of each restart, seconds

    def fail(self, refused):
        with self.lock:
            self.first += 1
            if refused:
                self.refused += 1
            self.per_epoch[self.epoch] = self.per_epoch.get(self.epoch,
                                                            0) + 1


class Client(threading.Thread):
    def __init__(self, n, port, stats, stop, host="127.0.0.1", pause=0.0):
        super().__init__(daemon=True)
        self.n, self.port, self.stats, self.stop = n, port, stats, stop
        self.host, self.pause = host, pause
        self.sock = None
        self.buf = b""
        self.seq = 0

    def connect(self):
        self.sock = socket.create_connection((self.host, self.port), 10)
        self.sock.settimeout(30)
        self.buf = b""

    def stale(self):
        """attr_clnt's test of a kept connection: readable before a
        request means the server closed it (or said something unasked)."""
        r, _, _ = select.select([self.sock], [], [], 0)
        return bool(r)

    def once(self, data):
        """One try: the reply, or an exception."""
        if self.sock is not None and not self.buf and self.stale():
            self.drop()
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
            if self.pause:
                time.sleep(self.pause)
        self.drop()


class Notify(threading.Thread):
    """$NOTIFY_SOCKET, as systemd keeps it: READY=1 from each process, and
    the descriptors it stores (FDSTORE=1) for the next one."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.path = path
        self.ready = threading.Semaphore(0)
        self.synced = threading.Semaphore(0)
        self.lock = threading.Lock()
        self.stored = []

    def run(self):
        while True:
            try:
                msg, fds, _, _ = socket.recv_fds(self.sock, 4096, 16)
            except OSError:
                return
            lines = msg.decode(errors="replace").split("\n")
            if lines[0] == "SYNC":
                self.synced.release()
                continue
            if "FDSTORE=1" in lines:
                with self.lock:
                    self.stored.extend(fds)
            else:
                for fd in fds:
                    os.close(fd)
            if "READY=1" in lines:
                self.ready.release()

    def wait_ready(self, timeout=20):
        if not self.ready.acquire(timeout=timeout):
            raise TimeoutError("natguard did not say READY=1")

    def take(self):
        """What the stopped process stored: systemd reads its notify
        socket dry before it handles the exit; so does this, with a
        message of its own behind the process's."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"SYNC", self.path)
        self.synced.acquire(timeout=10)
        with self.lock:
            fds, self.stored = self.stored, []
        return fds


# Started as systemd starts a service: the listening socket at descriptor
# 3, the stored descriptors after it, LISTEN_PID the process's own.
LOG = (open(os.environ["RESTART_LOG"], "a") if os.environ.get("RESTART_LOG")
       else subprocess.DEVNULL)

LAUNCH = """
import os, sys
fds = [int(x) for x in sys.argv[1].split(",")]
n = len(fds)
tmp = [os.dup(fd) for fd in fds]
for fd in fds:
    os.close(fd)
tmp = [os.dup2(t, 100 + i) or 100 + i for i, t in enumerate(tmp)]
for i, t in enumerate(tmp):
    os.dup2(t, 3 + i)
    os.close(t)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = str(n)
os.execv(sys.argv[2], sys.argv[2:])
"""


def start(args, conf, notify, lsock, handover):
    env = dict(os.environ, NOTIFY_SOCKET=notify.path)
    if lsock is None:
        p = subprocess.Popen([args.natguard, "-c", conf], env=env,
                             stderr=LOG)
    else:
        stored = notify.take() if handover else []
        fds = [lsock.fileno()] + stored
        if handover:
            env["FDSTORE"] = "1024"
        p = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, ",".join(map(str, fds)),
             args.natguard, "-c", conf],
            env=env, pass_fds=fds, stderr=LOG)
        for fd in stored:
            os.close(fd)
    notify.wait_ready()
    return p


def run_external(args):
    """A natguard run by a real service manager: connect to --connect,
    restart (or reload) with a command, which returns once it is done
    (systemctl restart of a Type=notify unit: after READY=1)."""
    host, _, port = args.connect.rpartition(":")
    stats = drive(args, host, int(port), lambda: subprocess.run(
        args.command, shell=True, check=True))
    report(args, "reload" if args.reload else "restart-external", stats)


def drive(args, host, port, restart):
    """The clients under way, RESTARTS restarts (restart() each), the
    clients stopped: their counts."""
    stats, stop = Stats(), threading.Event()
    clients = [Client(i, port, stats, stop, host, args.pause / 1000.0)
               for i in range(args.clients)]
    for c in clients:
        c.start()
    time.sleep(args.settle)
    for i in range(args.restarts):
        with stats.lock:
            stats.epoch = i + 1
        t = time.monotonic()
        restart()
        stats.durations.append(time.monotonic() - t)
        time.sleep(args.settle)
    stop.set()
    for c in clients:
        c.join(5)
    return stats


def report(args, label, stats):
    worst = max(stats.per_epoch.values()) if stats.per_epoch else 0
    d = sorted(stats.durations) or [0.0]
    verb = "reload" if args.reload else "restart"
    print("%s: %d %ss, %d requests, %d first-try failures (at most %d in one "
          "%s), %d failed after the retry, %d refused, slowest answer %.0f ms, "
          "%s median %.0f ms (slowest %.0f ms)"
          % (label, args.restarts, verb, stats.requests, stats.first, worst,
             verb, stats.after_retry, stats.refused, stats.slowest * 1000,
             verb, d[len(d) // 2] * 1000, d[-1] * 1000))
    sys.stdout.flush()


def run(args, mode):
    if mode == "external":
        run_external(args)
        return
    tmp = tempfile.mkdtemp(prefix="ng-restart.")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    lsock = None
    handover = mode == "handover"
    if mode in ("systemd", "handover"):
        s.listen(4096)
        lsock = s
    else:
        s.close()
    conf = os.path.join(tmp, "natguard.conf")
    with open(conf, "w") as f:
        f.write("listen = inet:127.0.0.1:%d\nlog = stderr\nlog_level = "
                "%s\ngateways = none\nmynetworks = none\nstate_dir =\n"
                "spf = no\n" % (port, os.environ.get("RESTART_LOG_LEVEL",
                                               "warning")))
    notify = Notify(os.path.join(tmp, "notify"))
    notify.start()
    proc = [start(args, conf, notify, lsock, handover)]

    def restart():
        if args.reload:
            proc[0].send_signal(signal.SIGHUP)
            notify.wait_ready()
        else:
            proc[0].send_signal(signal.SIGTERM)
            proc[0].wait()
            proc[0] = start(args, conf, notify, lsock, handover)

    stats = drive(args, "127.0.0.1", port, restart)
    proc[0].send_signal(signal.SIGTERM)
    proc[0].wait()
    report(args, "reload" if args.reload else "restart-" + mode, stats)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--natguard", default=os.environ.get("NATGUARD",
                                                         "src/natguard"))
    ap.add_argument("--restarts", type=int, default=20)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--settle", type=float, default=0.5)
    ap.add_argument("--pause", type=float, default=0.0,
                    help="ms between a reply and the next request")
    ap.add_argument("--reload", action="store_true")
    ap.add_argument("--connect", help="external: HOST:PORT")
    ap.add_argument("--command", help="external: restarts (or reloads)")
    ap.add_argument("modes", nargs="*", default=["bare", "systemd",
                                                 "handover"])
    args = ap.parse_args()
    for mode in args.modes:
        run(args, mode)


main()
