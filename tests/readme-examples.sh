#!/bin/sh
# The documents' examples are what natguard prints: the audit summary
# line for line, and each FAIL/fix line of the doctor example (its "..."
# stand for checks that depend on the machine).  The example files are
# the fixtures the documents name, copied to the names they use.  Each
# example is looked for in the README and every README_FILES document.
set -u
name=readme-examples
: "${NATGUARD:?}" "${TESTDATA:?}"
srcdir=$(cd "$(dirname "$0")/.." && pwd)
docs="$srcdir/README $srcdir/README_FILES/*"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pass=0 fail=0
# The indented block after the line "    $ COMMAND" of the first document
# that has it, unindented.
block() {
	# shellcheck disable=SC2086
	awk -v cmd="    \$ $1" '
	    $0 == cmd { on = 1; next }
	    on && /^$/ { exit }
	    on { sub(/^    /, ""); print }' $docs
}

block "natguard audit tests/data/audit-rfc5424.txt" > "$tmp/audit.want"
(cd "$srcdir" && "$NATGUARD" audit tests/data/audit-rfc5424.txt) \
    > "$tmp/audit.got" 2>&1
if [ -s "$tmp/audit.want" ] && cmp -s "$tmp/audit.want" "$tmp/audit.got"; then
	echo "PASS: audit example"; pass=$((pass + 1))
else
	echo "FAIL: audit example: the document (-) and natguard (+) differ:"
	diff -u "$tmp/audit.want" "$tmp/audit.got" | sed 's/^/    /'
	fail=$((fail + 1))
fi

cp "$TESTDATA/doctor/daemon-proxied.json" "$tmp/daemon.json"
cp "$TESTDATA/doctor/compose-proxied.yaml" "$tmp/compose.yaml"
printf 'gateways = 172.20.0.1\nspf = no\n' > "$tmp/natguard.conf"
(cd "$tmp" && "$NATGUARD" doctor -c natguard.conf \
    --daemon-json daemon.json --compose compose.yaml) > "$tmp/doctor.got"
rc=$?
if [ $rc -eq 1 ]; then echo "PASS: doctor example exits 1"; pass=$((pass + 1))
else echo "FAIL: doctor example exits $rc, expected 1"; fail=$((fail + 1)); fi
block "natguard doctor --daemon-json daemon.json --compose compose.yaml" |
    grep -v '^\.\.\.$' > "$tmp/doctor.want"
n=0
while IFS= read -r line; do
	n=$((n + 1))
	if grep -qxF -- "$line" "$tmp/doctor.got"; then
		echo "PASS: doctor prints: $(echo "$line" | cut -c 1-60)..."
		pass=$((pass + 1))
	else
		echo "FAIL: doctor example line not printed: $line"
		fail=$((fail + 1))
	fi
done < "$tmp/doctor.want"
if [ $n -lt 4 ]; then
	echo "FAIL: the documents' doctor example has $n lines, expected 4"
	fail=$((fail + 1))
fi
echo "$name: $pass passed, $fail failed"
[ $fail -eq 0 ]
