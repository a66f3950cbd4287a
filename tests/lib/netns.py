"""Shared by the Python suites that need a network and mount namespace of
their own (127.0.0.1:53 free for their DNS server, /etc/resolv.conf
theirs to bind-mount): tests/policyd-spf/differential.py and
tests/faults/matrix.py."""

import os
import subprocess
import sys

INSIDE = "NG_NETNS_INSIDE"


def enter(script, skip):
    """Re-run script in a network and mount namespace of its own, unless
    this is that run already; skip(why) when that cannot be had.  Returns
    only inside."""
    if os.environ.get(INSIDE) == "1":
        return
    if os.geteuid() != 0:
        skip("needs root for a network and mount namespace")
    try:
        subprocess.run(["unshare", "--mount", "--net", "true"], check=True,
                       stderr=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError):
        skip("unshare --mount --net does not work here")
    env = dict(os.environ, **{INSIDE: "1"})
    sys.exit(subprocess.run(["unshare", "--mount", "--net", sys.executable,
                             os.path.abspath(script)] + sys.argv[1:],
                            env=env).returncode)
