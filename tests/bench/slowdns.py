#!/usr/bin/python3
"""A DNS server on 127.0.0.1 that answers every question after a delay.

dK.<anything>.test TXT: "v=spf1 ip4:192.0.2.0/24 -all"; mK.<...>.test TXT:
three includes, of i1-mK.<...> and i2-mK.<...> ("v=spf1 -all") and of
i3-mK.<...> ("v=spf1 ip4:192.0.2.0/24 -all"); anything else: NXDOMAIN.  Prints "ready PORT" once it listens.  One asyncio loop, no
thread per question, so that it keeps its delay under a burst of a
thousand.  With a second argument "default-rcvbuf" it keeps the kernel's
default receive buffer, as unbound's so-rcvbuf: 0 does, and loses
datagrams of a burst as such a resolver does (make bench, and
tests/integration/dns_tests.c's burst case).
"""
import asyncio
import socket
import sys

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

DELAY = float(sys.argv[1]) if len(sys.argv) > 1 else 0.3
BIG_RCVBUF = len(sys.argv) < 3 or sys.argv[2] != "default-rcvbuf"


def answer(data):
    q = dns.message.from_wire(data)
    r = dns.message.make_response(q)
    name = q.question[0].name.to_text().lower()
    txt = None
    if q.question[0].rdtype == dns.rdatatype.TXT and name.endswith(".test."):
        if name.startswith("d") or name.startswith("i3-"):
            txt = "v=spf1 ip4:192.0.2.0/24 -all"
        elif name.startswith("i1-") or name.startswith("i2-"):
            txt = "v=spf1 -all"
        elif name.startswith("m"):
            txt = "v=spf1 " + " ".join("include:i%d-%s" % (i, name)
                                       for i in (1, 2, 3)) + " -all"
    if txt is not None:
        r.answer.append(dns.rrset.from_text(
            q.question[0].name, 300, "IN", "TXT", '"%s"' % txt))
    else:
        r.set_rcode(dns.rcode.NXDOMAIN)
    return r.to_wire()


class Slow(asyncio.DatagramProtocol):
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, peer):
        try:
            wire = answer(data)
        except Exception:
            return
        asyncio.get_running_loop().call_later(
            DELAY, self.transport.sendto, wire, peer)


async def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if BIG_RCVBUF:
        # A burst of a thousand questions must not be dropped here either.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind(("127.0.0.1", 0))
    print("ready %d" % sock.getsockname()[1], flush=True)
    await asyncio.get_running_loop().create_datagram_endpoint(Slow, sock=sock)
    await asyncio.Event().wait()


asyncio.run(main())
