#!/bin/sh
# The RFC 4408 suite that Debian's python3-spf ships, through the RFC 7208
# runner (run.py): natguard must pass all of it.
CONFORMANCE_RFC=4408 CONFORMANCE_MIN=191 exec /usr/bin/python3 \
    "$(dirname "$0")/run.py"
