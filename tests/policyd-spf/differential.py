#!/usr/bin/python3
"""natguard against postfix-policyd-spf-python, over the policy protocol.

The real policyd-spf (Debian's /usr/bin/policyd-spf, unmodified) is
started as Postfix's spawn(8) starts it: one process per connection, the
connection its standard input and output.  natguard runs the config that
`natguard migrate --from-policyd-spf` made from the same policyd-spf.conf.
Both get the same stream of requests (IPv4 and IPv6 clients; HELO names
that are domains, literals and junk; the null sender; every SPF result
for each identity; later recipients of one message), for Debian's shipped
file and for an option set per option, with their DNS from one server on
the loopback: this script, in a network and mount namespace of its own,
where 127.0.0.1:53 is free and /etc/resolv.conf is bind-mounted to point
there (pyspf reads it; natguard does too).

What Postfix would do is compared: the action class (reject, defer_if_
permit, prepend, dunno, a restriction class), the SMTP and enhanced
status codes, and the header's name and fields (result, identity,
client-ip, envelope-from, helo, receiver).  A difference natguard makes
on purpose is pinned in PINS with its reason (README, "Where natguard
differs"); any other fails the test.  Prints "policyd-spf differential:
N agree, M pinned, K other".  Exits 77 (skip) without policyd-spf, root
or unshare.
"""

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

POLICYD = "/usr/bin/policyd-spf"
DEBIAN_CONF = "/etc/postfix-policyd-spf-python/policyd-spf.conf"
HERE = os.path.dirname(os.path.abspath(__file__))


def skip(why):
    print("SKIP: policyd-spf differential: %s" % why)
    sys.exit(77)


def load(name, path):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(HERE, "..", path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


if not os.path.exists(POLICYD):
    skip("no %s (Debian: postfix-policyd-spf-python)" % POLICYD)
load("netns", "lib/netns.py").enter(__file__, skip)

try:
    import dns.rcode
except ImportError as e:
    skip("%s (Debian: python3-dnspython)" % e)
conf = load("run", "conformance/run.py")

# The zone: every SPF result for either identity, HELO names to whitelist,
# a PTR name confirmed and one not.
ZONE = {
    "pass.test": [{"TXT": "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"}],
    "fail.test": [{"TXT": "v=spf1 ip4:203.0.113.0/24 -all"}],
    "nomail.test": [{"TXT": "v=spf1 -all"}],
    "softfail.test": [{"TXT": "v=spf1 ip4:203.0.113.0/24 ~all"}],
    "neutral.test": [{"TXT": "v=spf1 ?all"}],
    "none.test": [{"A": "203.0.113.5"}],
    "perm.test": [{"TXT": "v=spf1 ip4:192.0.2.0/24 foo:bar -all"}],
    "temp.test": [{"TXT": "v=spf1 include:servfail.test -all"}],
    "void.test": [{"TXT": "v=spf1 a:v1.void.test a:v2.void.test "
                          "a:v3.void.test -all"}],
    "mx.helo.test": [{"A": "198.51.100.20"}, {"AAAA": "3fff::20"}],
    "relay.trusted.test": [{"A": "198.51.100.20"}],
    "20.100.51.198.in-addr.arpa": [{"PTR": "relay.trusted.test"}],
    "10.2.0.192.in-addr.arpa": [{"PTR": "forged.trusted.test"}],
}


class Zone(conf.Zone):
    """servfail.* answers SERVFAIL at once: temperror without a wait."""

    def lookup(self, qname, qtype, depth=0):
        if qname.lower().rstrip(".").startswith("servfail."):
            return dns.rcode.SERVFAIL, [], False
        return super().lookup(qname, qtype, depth)


CLIENTS = ["192.0.2.10", "198.51.100.20", "2001:db8::10", "3fff::20"]
HELOS = ["pass.test", "fail.test", "softfail.test", "neutral.test",
         "none.test", "perm.test", "temp.test", "[192.0.2.10]", "junk",
         "mx.helo.test"]
SENDERS = ["a@pass.test", "a@fail.test", "a@softfail.test",
           "a@neutral.test", "a@none.test", "a@perm.test", "a@temp.test",
           "a@nomail.test", "a@void.test", ""]

# Debian's file first, then one option set per option (several values for
# the reject options): policyd-spf.conf lines added to Debian's.
OPTION_SETS = [
    ("defaults (Debian's file)", ""),
    ("HELO_reject = SPF_Not_Pass", "HELO_reject = SPF_Not_Pass"),
    ("HELO_reject = Softfail", "HELO_reject = Softfail"),
    ("HELO_reject = Null", "HELO_reject = Null"),
    ("HELO_reject = False", "HELO_reject = False"),
    ("HELO_reject = No_Check", "HELO_reject = No_Check"),
    ("Mail_From_reject = SPF_Not_Pass", "Mail_From_reject = SPF_Not_Pass"),
    ("Mail_From_reject = Softfail", "Mail_From_reject = Softfail"),
    ("Mail_From_reject = False", "Mail_From_reject = False"),
    ("Mail_From_reject = No_Check", "Mail_From_reject = No_Check"),
    ("PermError_reject = True", "PermError_reject = True"),
    ("TempError_Defer = True", "TempError_Defer = True"),
    ("TestOnly = 0", "TestOnly = 0"),
    ("skip_addresses", "skip_addresses = 127.0.0.0/8,::1,192.0.2.0/24"),
    ("Whitelist", "Whitelist = 198.51.100.0/24,3fff::/16"),
    ("Domain_Whitelist", "Domain_Whitelist = pass.test"),
    ("HELO_Whitelist", "HELO_Whitelist = mx.helo.test"),
    ("Domain_Whitelist_PTR", "Domain_Whitelist_PTR = trusted.test"),
    ("Header_Type = AR", "Header_Type = AR\nAuthserv_Id = mx.test"),
    ("Header_Type = None", "Header_Type = None"),
    ("Hide_Receiver = Yes", "Hide_Receiver = Yes"),
    ("HELO_pass_restriction", "HELO_pass_restriction = helo_passed"),
    ("Mail_From_pass_restriction",
     "Mail_From_pass_restriction = mfrom_passed"),
    ("No_Mail = True", "No_Mail = True"),
    ("Reject_Not_Pass_Domains",
     "Reject_Not_Pass_Domains = softfail.test,neutral.test"),
    ("Prospective", "Prospective = 192.0.2.10"),
    ("SPF_Enhanced_Status_Codes = No", "SPF_Enhanced_Status_Codes = No"),
    ("Reason_Message", "Reason_Message = SPF {rejectdefer}: {spf}"),
    ("Void_Limit = 5", "Void_Limit = 5"),
    ("Lookup_Time, Whitelist_Lookup_Time, debugLevel",
     "Lookup_Time = 10\nWhitelist_Lookup_Time = 5\ndebugLevel = 0"),
]

# Deliberate differences: (name, reason, test(req, cfg, policyd, natguard)).
# A request whose every difference is pinned counts as pinned.
PINS = []


def pin(name, reason):
    def deco(f):
        PINS.append((name, reason, f))
        return f
    return deco


@pin("null-sender-envelope-from",
     "the null sender's envelope-from= is the mailbox SPF checked, "
     "postmaster@HELO (RFC 7208 2.4), not \"<>\"")
def _(req, cfg, a, b, diff):
    return (req["sender"] == "" and a.get("envelope-from") == "<>" and
            b.get("envelope-from") == "postmaster@" + req["helo_name"] and
            set(diff) <= {"envelope-from", "identity"} and
            ("identity" not in diff or not helo_is_domain(req["helo_name"])))


@pin("null-sender-junk-helo",
     "a null sender whose HELO is no domain: natguard reports the MAIL FROM "
     "identity postmaster@HELO (none, RFC 7208 4.3), policyd-spf a HELO "
     "check of the junk name")
def _(req, cfg, a, b, diff):
    if a.get("header") == "authentication-results":
        return (req["sender"] == "" and
                not helo_is_domain(req["helo_name"]) and
                "smtp.helo" in a and "smtp.mailfrom" in b and
                a.get("result") == b.get("result") == "none")
    return (req["sender"] == "" and not helo_is_domain(req["helo_name"]) and
            a.get("identity") == "helo" and b.get("identity") == "mailfrom"
            and a.get("result") == b.get("result") == "none")


@pin("null-sender-helo-no-check",
     "HELO_reject = No_Check: natguard still checks a null sender's MAIL "
     "FROM identity, postmaster@HELO (RFC 7208 2.4: verifiers MUST check "
     "MAIL FROM when HELO was not checked); policyd-spf checks nothing")
def _(req, cfg, a, b, diff):
    return (req["sender"] == "" and "HELO_reject = No_Check" in cfg and
            a["class"] == "dunno")


@pin("mailfrom-no-check-junk-helo",
     "Mail_From_reject = No_Check and a HELO that is no domain: natguard "
     "checks MAIL FROM rather than nothing (RFC 7208 2.4) and reports its "
     "result; it acts on none of it, as policyd-spf")
def _(req, cfg, a, b, diff):
    return ("Mail_From_reject = No_Check" in cfg and
            not helo_is_domain(req["helo_name"]) and
            a["class"] == b["class"] == "prepend" and
            set(diff) <= {"identity", "result", "envelope-from"})


@pin("repeat-permerror-code",
     "a later recipient of a message rejected for permerror: policyd-spf "
     "answers 5.7.23 (its cached answer forgets the error), natguard 5.7.24 "
     "as for the first (RFC 7372)")
def _(req, cfg, a, b, diff):
    return (req["recipient"] == "c@rcpt.test" and diff == ["enhanced"] and
            a.get("enhanced") == "5.7.23" and b.get("enhanced") == "5.7.24")


@pin("helo-temperror-not-conclusive",
     "a HELO temperror defers only mail whose MAIL FROM neither passes nor "
     "is rejected (RFC 7208 2.3: only a conclusive HELO result decides); "
     "policyd-spf defers at once")
def _(req, cfg, a, b, diff):
    return (req["helo_name"] == "temp.test" and
            a["class"] == "defer_if_permit" and
            b["class"] in ("prepend", "reject", "restriction"))


@pin("testonly-header",
     "TestOnly = 0: where policyd-spf, not rejecting or deferring, answers "
     "DUNNO, natguard prepends the header with the result (what TestOnly "
     "is for: results recorded, nothing refused)")
def _(req, cfg, a, b, diff):
    return ("TestOnly = 0" in cfg and a["class"] == "dunno" and
            b["class"] == "prepend")


@pin("ptr-forward-confirmed",
     "Domain_Whitelist_PTR: a PTR name is trusted only forward-confirmed "
     "(its own addresses hold the client, RFC 7208 5.5); policyd-spf "
     "trusts the first PTR name, which whoever holds the address's reverse "
     "zone can set to anything")
def _(req, cfg, a, b, diff):
    return ("Domain_Whitelist_PTR" in cfg and
            req["client_address"] == "192.0.2.10" and
            (a.get("skipped", "").startswith("SPF skipped for PTR") or
             (req["recipient"] == "c@rcpt.test" and a["class"] == "dunno")))


@pin("ar-mailfrom-address",
     "Authentication-Results smtp.mailfrom= is the whole address (RFC 8601 "
     "2.7.2 allows local-part@domain), policyd-spf's the domain")
def _(req, cfg, a, b, diff):
    return (diff == ["smtp.mailfrom"] and
            a["smtp.mailfrom"] == b["smtp.mailfrom"].rpartition("@")[2])


@pin("restriction-none-bug",
     "HELO and MAIL FROM both pass with only HELO_pass_restriction set: "
     "policyd-spf answers \"action=None\" (its Mail_From_pass_restriction, "
     "unset), which Postfix takes for an unknown restriction class; natguard "
     "the HELO class")
def _(req, cfg, a, b, diff):
    return a.get("name") == "None" and b["class"] == "restriction"


@pin("helo-pass-over-mailfrom-fail",
     "a HELO pass with HELO_pass_restriction does not lift a MAIL FROM "
     "rejection: the sender's domain said this client may not send for it; "
     "policyd-spf answers the HELO class")
def _(req, cfg, a, b, diff):
    return (a["class"] == "restriction" and b["class"] == "reject" and
            "HELO_pass_restriction" in cfg)


@pin("restriction-repeat",
     "a later recipient of a message answered with a restriction class gets "
     "the class again from natguard (each RCPT is judged by it); "
     "policyd-spf's cache has the header it did not send, so DUNNO")
def _(req, cfg, a, b, diff):
    return (req["recipient"] == "c@rcpt.test" and a["class"] == "dunno" and
            b["class"] == "restriction")


@pin("no-mail-repeat",
     "No_Mail: a later recipient of a message whose reject No_Mail turned "
     "into a header gets the header again from policyd-spf (its cache kept "
     "the action from before), which Postfix adds twice; natguard prepends "
     "once per message")
def _(req, cfg, a, b, diff):
    return ("No_Mail" in cfg and req["recipient"] == "c@rcpt.test" and
            a["class"] == "prepend" and b["class"] == "dunno")


@pin("mailfrom-none-header",
     "MAIL FROM none and a HELO result that neither rejects nor defers: "
     "natguard's header reports the MAIL FROM result, which decides (SPEC "
     "section 4, step 7); policyd-spf's header reports the HELO result")
def _(req, cfg, a, b, diff):
    return (a["class"] == b["class"] == "prepend" and
            b.get("result") == "none" and a.get("result") != "none" and
            (a.get("identity") == "helo" or "smtp.helo" in a) and
            set(diff) <= {"identity", "result", "smtp.helo",
                          "smtp.mailfrom"})


def helo_is_domain(h):
    return "." in h and not h.startswith("[") and any(c.isalpha() for c in h)


def parse(reply):
    """What Postfix does with a reply: a tuple to compare, field by field."""
    r = reply[len("action="):] if reply.startswith("action=") else reply
    word, _, rest = r.partition(" ")
    lw = word.lower()
    if lw == "dunno":
        return {"class": "dunno"}
    if lw == "prepend":
        return dict(header(rest), **{"class": "prepend"})
    if lw == "defer_if_permit" or re.match(r"^[45][0-9][0-9]$", word):
        cls = ("reject" if word[0] == "5" else
               "defer" if word[0] == "4" else "defer_if_permit")
        code = word if word[0] in "45" else ""
        m = re.match(r"^([245]\.[0-9]{1,3}\.[0-9]{1,3})( |$)", rest)
        return {"class": cls, "code": code, "enhanced": m.group(1) if m
                else ""}
    return {"class": "restriction", "name": word}


def strip_comment(s):
    """The text after a leading "(...)" (nested parentheses allowed)."""
    s = s.lstrip()
    if not s.startswith("("):
        return s
    depth = 0
    for i, ch in enumerate(s):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return s[i + 1:]
    return ""


def fields(s):
    return {k.lower(): v.strip('"') for k, v in
            re.findall(r'([A-Za-z.-]+)=("[^"]*"|[^;\s)]+)', s)}


def header(h):
    name, _, body = h.partition(":")
    out = {"header": name.strip().lower()}
    body = body.strip()
    if out["header"] == "received-spf":
        result, _, rest = body.partition(" ")
        out["result"] = result.lower()
        out.update(fields(strip_comment(rest)))
    elif out["header"] == "x-comment":
        what, _, rest = body.partition(" - ")
        out["skipped"] = what.strip()
        out.update(fields(rest))
    else:
        authserv, _, rest = body.partition(";")
        out["authserv-id"] = authserv.strip()
        m = re.match(r"\s*(spf|none)(=([a-z]+))?", rest)
        out["result"] = (m.group(3) or m.group(1)) if m else "?"
        f = fields(rest)
        for k in ("smtp.mailfrom", "smtp.helo"):
            if k in f:
                out[k] = f[k]
    return out


def compare(a, b, cfg):
    """The fields in which a and b differ, as Postfix would see them."""
    keys = set(a) | set(b)
    if "Hide_Receiver = Yes" in cfg:
        keys.discard("receiver")
    return sorted(k for k in keys if a.get(k) != b.get(k))


class Spawn(threading.Thread):
    """Postfix's spawn(8) for policyd-spf: a process per connection."""

    def __init__(self, path, conffile):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.conffile = conffile
        self.procs = []

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.procs.append(subprocess.Popen(
                [POLICYD, self.conffile], stdin=conn, stdout=conn,
                stderr=subprocess.DEVNULL))
            conn.close()

    def stop(self):
        self.sock.close()
        for p in self.procs:
            p.kill()
            p.wait()


class Client:
    """One policy connection, as one smtpd process keeps it."""

    def __init__(self, family, addr):
        self.s = socket.socket(family, socket.SOCK_STREAM)
        self.s.settimeout(60)
        self.s.connect(addr)
        self.buf = b""

    def ask(self, attrs):
        self.s.sendall(("".join("%s=%s\n" % kv for kv in attrs.items())
                        + "\n").encode())
        while b"\n\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        reply, _, self.buf = self.buf.partition(b"\n\n")
        return reply.decode("utf-8", "replace")

    def close(self):
        self.s.close()


def requests():
    """The stream: every client, HELO and sender; a second recipient for
    one message in seven."""
    n = 0
    for client in CLIENTS:
        for helo in HELOS:
            for sender in SENDERS:
                n += 1
                attrs = {"request": "smtpd_access_policy",
                         "protocol_state": "RCPT",
                         "protocol_name": "ESMTP",
                         "client_address": client,
                         "client_name": "unknown",
                         "helo_name": helo, "sender": sender,
                         "recipient": "b@rcpt.test",
                         "instance": "%x.%d" % (os.getpid(), n),
                         "queue_id": "", "sasl_username": ""}
                yield attrs
                if n % 7 == 0:
                    yield dict(attrs, recipient="c@rcpt.test")


def wait_port(port, deadline=10):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_natguard(natguard, tmp, pconf):
    out = subprocess.run([natguard, "migrate", "--from-policyd-spf", pconf],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("migrate: %s" % out.stderr)
    port = free_port()
    nconf = os.path.join(tmp, "natguard.conf")
    with open(nconf, "w") as f:
        # What the test's machine needs, after what migrate wrote.
        f.write(out.stdout + "\nlisten = inet:127.0.0.1:%d\nlog = stderr\n"
                "gateways = none\nmynetworks = none\nstate_dir =\n" % port)
        if "authserv_id" not in out.stdout:
            f.write("authserv_id = %s\n" % socket.gethostname())
    errlog = open(os.path.join(tmp, "natguard.log"), "w")
    p = subprocess.Popen([natguard, "-c", nconf], stderr=errlog)
    if not wait_port(port):
        p.kill()
        raise RuntimeError("natguard did not listen")
    return p, port


def run_set(natguard, tmp, label, extra, stats, failures):
    with open(DEBIAN_CONF) as f:
        base = f.read()
    pconf = os.path.join(tmp, "policyd-spf.conf")
    with open(pconf, "w") as f:
        # Later lines win in policyd-spf as in a dict: Debian's, then ours.
        f.write(base + "\n" + extra + "\n")
    spath = os.path.join(tmp, "policyd-spf.sock")
    if os.path.exists(spath):
        os.unlink(spath)
    spawn = Spawn(spath, pconf)
    spawn.start()
    ng, port = start_natguard(natguard, tmp, pconf)
    pc = Client(socket.AF_UNIX, spath)
    nc = Client(socket.AF_INET, ("127.0.0.1", port))
    counts = {"agree": 0, "pinned": 0, "other": 0}
    try:
        for attrs in requests():
            p_reply = pc.ask(attrs)
            try:
                n_reply = nc.ask(attrs)
            except (EOFError, OSError) as e:
                with open(os.path.join(tmp, "natguard.log")) as f:
                    tail = f.readlines()[-5:]
                raise RuntimeError("%s: natguard: %s on %r; its log ends:\n%s"
                                   % (label, e, attrs, "".join(tail)))
            a, b = parse(p_reply), parse(n_reply)
            diff = compare(a, b, extra)
            if not diff:
                counts["agree"] += 1
                continue
            hit = [name for name, _, f in PINS
                   if f(attrs, extra, a, b, diff)]
            if hit:
                counts["pinned"] += 1
                for name in hit:
                    stats[name] = stats.get(name, 0) + 1
                continue
            counts["other"] += 1
            failures.append("%s: client=%s helo=%s sender=<%s> "
                            "recipient=%s: %s\n  policyd-spf: %s\n"
                            "  natguard:    %s"
                            % (label, attrs["client_address"],
                               attrs["helo_name"], attrs["sender"],
                               attrs["recipient"], ", ".join(diff),
                               p_reply, n_reply))
    finally:
        pc.close()
        nc.close()
        spawn.stop()
        ng.terminate()
        ng.wait()
    return counts


def main():
    natguard = os.environ.get("NATGUARD", "src/natguard")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    tmp = tempfile.mkdtemp(prefix="ng-policyd-diff.")
    resolv = os.path.join(tmp, "resolv.conf")
    with open(resolv, "w") as f:
        f.write("nameserver 127.0.0.1\noptions timeout:2 attempts:1\n")
    subprocess.run(["mount", "--bind", resolv, "/etc/resolv.conf"],
                   check=True)
    conf.ZONE = Zone(ZONE)
    udp = conf.ThreadingUDP(("127.0.0.1", 53), conf.UDP)
    tcp = conf.ThreadingTCP(("127.0.0.1", 53), conf.TCP)
    for srv in (udp, tcp):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    only = os.environ.get("DIFF_ONLY")
    stats, failures, total = {}, [], {"agree": 0, "pinned": 0, "other": 0}
    start = time.monotonic()
    try:
        for label, extra in OPTION_SETS:
            if only and only not in label:
                continue
            c = run_set(natguard, tmp, label, extra, stats, failures)
            print("  %-46s %4d agree, %3d pinned, %d other"
                  % (label, c["agree"], c["pinned"], c["other"]))
            for k in total:
                total[k] += c[k]
    finally:
        udp.shutdown()
        tcp.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    for f in failures[:int(os.environ.get("DIFF_SHOW", "40"))]:
        print(f)
    if len(failures) > int(os.environ.get("DIFF_SHOW", "40")):
        print("... and %d more" % len(failures))
    for name, reason, _ in PINS:
        if name in stats:
            print("  pinned %-30s %4d: %s" % (name, stats[name], reason))
    print("policyd-spf differential: %d agree, %d pinned, %d other "
          "(%d option sets, %.0f s)" % (total["agree"], total["pinned"],
                                       total["other"], len(OPTION_SETS),
                                       time.monotonic() - start))
    return 1 if total["other"] else 0


sys.exit(main())
