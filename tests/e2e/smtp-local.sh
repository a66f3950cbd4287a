#!/bin/bash
# One SMTP transaction from inside a mail container, where no swaks is:
# bash's /dev/tcp to HOST:25, HELO client.pass.test, FROM and TO, QUIT.
# Prints the server's lines, "<- " before each, as swaks does.
# Usage: smtp-local.sh HOST FROM TO
set -u
exec 3<>"/dev/tcp/$1/25" || exit 1
reply() {	# the lines of one reply, up to "NNN text"
	local line
	while IFS= read -r -t 20 line <&3; do
		line=${line%$'\r'}
		echo "<- $line"
		case "$line" in [0-9][0-9][0-9]-*) ;; *) return 0 ;; esac
	done
	return 1
}
say() { printf '%s\r\n' "$1" >&3; reply; }
reply && say "EHLO client.pass.test" && say "MAIL FROM:<$2>" &&
    say "RCPT TO:<$3>" && say "QUIT"
