#!/bin/sh
# make check-valgrind runs the integration suites with NATGUARD set to this
# script: every natguard they start, daemon or subcommand, runs under
# memcheck, its report in $NG_VALGRIND/vg.PID.log (empty when clean).
exec valgrind --quiet --vgdb=no --error-exitcode=99 --leak-check=full \
	--show-leak-kinds=definite,indirect,possible \
	--errors-for-leak-kinds=definite,indirect,possible \
	--log-file="$NG_VALGRIND/vg.%p.log" "$NG_NATGUARD" "$@"
