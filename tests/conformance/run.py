#!/usr/bin/python3
"""RFC 7208 conformance: the openspf test suite over real DNS.

Each scenario's zone is served by a DNS server started here on the
loopback (UDP and TCP), with the zone rules of the reference driver
(../shared/conformance/README.md); each test is asked of
`natguard check --json` and its spf.result compared with the expected
result(s).  Prints the score and the failing tests; exits 1 below the
minimum (CONFORMANCE_MIN), 77 (skip) without the suite or its Python
modules.
"""

import gzip
import json
import os
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading

try:
    import yaml
    import dns.flags
    import dns.exception
    import dns.message
    import dns.name
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset
except ImportError as e:
    print("SKIP: conformance: %s (Debian: python3-yaml python3-dnspython)" % e)
    sys.exit(77)

# The suite: ../shared's copy, else the one Debian's python3-spf ships (the
# same file, gzipped), so that a fresh clone runs it too.  CONFORMANCE_RFC
# =4408 runs python3-spf's RFC 4408 suite instead (tests/conformance/
# rfc4408.sh).
RFC = os.environ.get("CONFORMANCE_RFC", "7208")
SUITES = [os.path.join(os.environ.get("SHARED", "../shared"), "conformance",
                       "rfc%s-tests.yml" % RFC),
          "/usr/share/doc/python3-spf/rfc%s-tests.yml.gz" % RFC]
TARGET = 203 if RFC == "7208" else 191
MINIMUM = 203  # what make check accepts today (CONFORMANCE_MIN)


def open_suite():
    """(path, binary file) of the first suite present, or (None, None)."""
    for path in SUITES:
        if os.path.exists(path):
            if path.endswith(".gz"):
                return path, gzip.open(path, "rb")
            return path, open(path, "rb")
    return None, None


def as_bytes(s):
    """YAML gives str; \\xNN escapes are bytes, the rest UTF-8."""
    out = bytearray()
    for ch in s:
        out += bytes([ord(ch)]) if ord(ch) < 256 else ch.encode("utf-8")
    return bytes(out)


class Zone:
    """A scenario's zonedata, answered as the reference driver does."""

    def __init__(self, data):
        self.names = {}
        for name, records in (data or {}).items():
            self.names[name.lower().rstrip(".")] = self.expand(records or [])

    @staticmethod
    def expand(records):
        # SPF entries are also TXT, unless the name has TXT entries; those
        # generated TXT come last.  A value NONE is no record at all.
        out, generated, gen = [], [], True
        for r in records:
            if r == "TIMEOUT":
                out.append(r)
                continue
            (t, v), = r.items()
            if t == "TXT":
                gen = False
            elif t == "SPF" and gen:
                generated.append(("TXT", v))
            if v != "NONE":
                out.append((t, v))
        return out + (generated if gen else [])

    def lookup(self, qname, qtype, depth=0):
        """(rcode, [(name, type, value)], timeout)."""
        name = qname.lower().rstrip(".")
        if depth > 8:
            return dns.rcode.NOERROR, [], False  # a CNAME loop
        if name not in self.names:
            if name.startswith("error."):
                return None, [], True
            return dns.rcode.NXDOMAIN, [], False
        answers, timeout = [], True
        for r in self.names[name]:
            if r == "TIMEOUT":
                if timeout:
                    return None, [], True
                break
            t, v = r
            if t == qtype:
                timeout = False
            if v == "TIMEOUT":
                if t == qtype:
                    return None, [], True
                continue
            if t == "CNAME" and qtype != "CNAME":
                rc, more, to = self.lookup(v, qtype, depth + 1)
                return (rc if rc is not None else dns.rcode.NOERROR,
                        [(name, "CNAME", v)] + more, to)
            if t == qtype:
                answers.append((name, t, v))
        return dns.rcode.NOERROR, answers, False


ZONE = Zone({})


def text_name(name):
    """A query name as the zone data writes it: its labels' own bytes
    (dnspython's to_text() escapes a space as \\032, which the zone has
    as a space)."""
    return ".".join(l.decode("latin-1") for l in name.labels if l)


def wire_name(text):
    """The reverse of text_name()."""
    return dns.name.Name([l.encode("latin-1")
                          for l in text.rstrip(".").split(".")] + [b""])


def build(query):
    q = query.question[0]
    qtype = dns.rdatatype.to_text(q.rdtype)
    rcode, answers, timeout = ZONE.lookup(text_name(q.name), qtype)
    if timeout:
        return None
    resp = dns.message.make_response(query)
    resp.flags |= dns.flags.AA
    resp.set_rcode(rcode)
    for name, rtype, value in answers:
        rdtype = dns.rdatatype.from_text(rtype)
        rrset = resp.find_rrset(resp.answer, wire_name(name),
                                dns.rdataclass.IN, rdtype, create=True)
        if rtype == "TXT":
            strings = value if isinstance(value, list) else [value]
            wire = b"".join(bytes([len(b)]) + b
                            for b in (as_bytes(s)[:255] for s in strings))
            rd = dns.rdata.from_wire(dns.rdataclass.IN, rdtype, wire, 0,
                                     len(wire))
        elif rtype == "MX":
            rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype,
                                     "%d %s." % (value[0], value[1]))
        elif rtype in ("PTR", "CNAME"):
            rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype,
                                     value.rstrip(".") + ".")
        else:
            rd = dns.rdata.from_text(dns.rdataclass.IN, rdtype, value)
        rrset.add(rd, ttl=60)
    return resp


class UDP(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        try:
            resp = build(dns.message.from_wire(data))
        except Exception:
            return
        if resp is None:
            return
        try:
            wire = resp.to_wire()
        except dns.exception.TooBig:
            wire = None	# past the client's EDNS payload size
        if wire is None or (len(wire) > 512 and not resp.edns >= 0):
            resp.flags |= dns.flags.TC
            del resp.answer[:]
            wire = resp.to_wire()
        sock.sendto(wire, self.client_address)


class TCP(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            n = struct.unpack("!H", self.request.recv(2))[0]
            data = b""
            while len(data) < n:
                chunk = self.request.recv(n - len(data))
                if not chunk:
                    return
                data += chunk
            resp = build(dns.message.from_wire(data))
            if resp is None:
                return
            wire = resp.to_wire(max_size=65535)	# TCP: no EDNS bound
            self.request.sendall(struct.pack("!H", len(wire)) + wire)
        except Exception:
            return


class ThreadingUDP(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True


class ThreadingTCP(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def start_servers(dns_timeout="2s"):
    """The DNS server (UDP and TCP on one port) answering from ZONE, and a
    natguard.conf that asks it: (udp, tcp, conf path), or None.  The
    zones' TIMEOUT names cost dns_timeout each; shorter would let a loaded
    machine (make -j2 check beside the Docker suites) turn a slow answer
    into temperror."""
    # The UDP port is the kernel's choice, and another test may hold the
    # same number for TCP; then choose again.
    for attempt in range(50):
        udp = ThreadingUDP(("127.0.0.1", 0), UDP)
        port = udp.server_address[1]
        try:
            tcp = ThreadingTCP(("127.0.0.1", port), TCP)
            break
        except OSError:
            udp.server_close()
    else:
        return None
    for srv in (udp, tcp):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write("dns_servers = 127.0.0.1:%d\ndns_timeout = %s\n"
                "spf_helo = no\nskip_addresses =\ngateways = none\n"
                "dns_cache_size = 0\n" % (port, dns_timeout))
    return udp, tcp, f.name


def main():
    global ZONE
    path, suite = open_suite()
    if suite is None:
        print("SKIP: conformance: neither %s is there (Debian: python3-spf)"
              % " nor ".join(SUITES))
        return 77
    with suite:
        scenarios = list(yaml.safe_load_all(suite))
    print("conformance: suite %s" % path)
    natguard = os.environ.get("NATGUARD", "src/natguard")
    minimum = int(os.environ.get("CONFORMANCE_MIN", MINIMUM))
    servers = start_servers()
    if servers is None:
        print("conformance: no port free for both UDP and TCP")
        return 1
    udp, tcp, conf = servers
    passed, failed = 0, []
    for sc in scenarios:
        ZONE = Zone(sc.get("zonedata"))
        for name, t in sc["tests"].items():
            want = t["result"] if isinstance(t["result"], list) \
                else [t["result"]]
            args = [natguard, "check", "-c", conf, "--json",
                    "client_address=%s" % t["host"],
                    "helo_name=%s" % t.get("helo", ""),
                    "sender=%s" % t.get("mailfrom", "")]
            try:
                out = subprocess.run(args, capture_output=True, timeout=60)
                spf = json.loads(out.stdout).get("spf") or {}
                got = spf.get("result", "(no spf)")
            except Exception as e:
                got = "(error: %s)" % e
            if got in want:
                passed += 1
            else:
                failed.append("%s: %s: got %s, want %s"
                              % (sc["description"], name, got,
                                 " or ".join(want)))
    os.unlink(conf)
    udp.shutdown()
    tcp.shutdown()
    total = passed + len(failed)
    for line in failed:
        print("FAIL: " + line)
    print("RFC %s conformance: %d/%d (target %d, minimum %d)"
          % (RFC, passed, total, TARGET, minimum))
    return 0 if passed >= minimum else 1


if __name__ == "__main__":
    sys.exit(main())
