#!/usr/bin/python3
"""make bench, audit part: natguard audit over 100 MB and 1 GB of log.

The log is natguard's own decision lines and Postfix's symptom lines
(tests/data/audit-syslog.txt) repeated.  Prints MB/s and peak RSS for
both sizes: the throughput target is 200 MB/s, and the memory must not
grow with the size of the log.  Figures only, no pass or fail.
"""
import os
import resource
import subprocess
import sys
import tempfile
import time

natguard = os.environ.get("NATGUARD", "src/natguard")
data = os.path.join(os.environ.get("TESTDATA", "tests/data"),
                    "audit-syslog.txt")
with open(data, "rb") as f:
    unit = f.read()

with tempfile.TemporaryDirectory() as tmp:
    for mb in (100, 1000):
        path = os.path.join(tmp, "mail.log")
        block = unit * (1 << 20 // len(unit) + 1)
        with open(path, "wb") as f:
            written = 0
            while written < mb * 1000 * 1000:
                f.write(block)
                written += len(block)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.monotonic()
        p = subprocess.run([natguard, "audit", path], stdout=subprocess.PIPE)
        secs = time.monotonic() - t0
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        first = p.stdout.decode().splitlines()[0] if p.stdout else "?"
        print("audit %d MB: %.2f s, %.0f MB/s (target >= 200 MB/s), "
              "peak RSS %d kB; %s" % (written // 1000000, secs,
                                      written / 1e6 / secs,
                                      max(rss, before), first))
        os.unlink(path)
