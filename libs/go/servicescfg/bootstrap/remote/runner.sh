#!/bin/bash
# codex-bootstrap step runner: runs one bootstrap step on this host for
# `codex-bootstrap install`, which uploads it (see
# libs/go/servicescfg/bootstrap/remote in the codex-bootstrap sources).
#
#   runner.sh STATE STEP HASH LOCK LOCK_WAIT GRACE
#
# stdin: a line "TAR_BYTES VARS_BYTES", a tar of the step's folder (step.sh,
# files/), the step's variables as shell assignments, then nothing until
# install is done with the step. The end of stdin (install finished,
# was interrupted, timed out, or lost its connection) kills the step's whole
# process group. The variables never reach an argument list, an environment
# or a file: they are read into memory and handed to the step's shell
# through a pipe, as shell variables that are not exported.
set -u
umask 077
state=$1 step=$2 hash=$3 lock=$4 lock_wait=$5 grace=$6
run=$state/run/$step
marker=$state/steps/$step
child=
cleanup() {
	[ -z "$child" ] || kill -KILL -- "-$child" 2>/dev/null
	rm -rf -- "$run"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 141' PIPE
trap 'exit 143' TERM
trap 'exit 130' INT
fail() {
	echo "codex-bootstrap: $*" >&2
	exit 90
}

IFS=' ' read -r tar_bytes vars_bytes || fail "no step header on stdin"
mkdir -p -- "$state/steps" "$state/run" || fail "cannot create $state"
rm -rf -- "$run" && mkdir -- "$run" || fail "cannot create $run"
head -c "$tar_bytes" | tar -x -o -f - -C "$run" || fail "the upload of step $step failed"
# The trailing "." keeps trailing newlines of the last value.
vars=$(head -c "$vars_bytes" && echo .) || fail "reading the variables of step $step failed"
vars=${vars%.}
# A step that runs again is not finished until it succeeds again.
rm -f -- "$marker"

# The lock is held until the step's whole process group is gone, so a step
# that runs again never races what is left of a cut run of it.
exec 9>>"$lock"
flock -w "$lock_wait" 9 || fail "another step still runs on this host: $lock is held"

exec 7<&0
# setsid: the step leads a process group of its own (this shell, run
# without job control, does not), so the group can be killed as one.
setsid /bin/bash -c '. /dev/fd/3 && exec 3<&- && cd "$1" && . ./step.sh' "$step" "$run" \
	3< <(printf '%s' "$vars") </dev/null 7<&- 9>&- &
child=$!
unset vars

# The watchdog: stdin ends when install is done with the step or gone.
# (An asynchronous command reads /dev/null unless told otherwise; the
# step's PID is signalled too, in case it has not called setsid yet.)
(
	while IFS= read -r _; do :; done
	kill -TERM -- "-$child" "$child" 2>/dev/null
	sleep "$grace"
	kill -KILL -- "-$child" "$child" 2>/dev/null
) 0<&7 >/dev/null 2>&1 &
dog=$!
exec 7<&-

# The shell's note about a killed child would quote the command line.
{ wait "$child"; } 2>/dev/null
rc=$?
kill "$dog" 2>/dev/null
kill -KILL -- "-$child" 2>/dev/null
# Wait for the rest of the group to be gone before letting go of the lock.
for _ in $(seq 100); do
	kill -0 -- "-$child" 2>/dev/null || break
	sleep 0.1
done
child=

if [ "$rc" = 0 ]; then
	printf '%s\n' "$hash" >"$marker.tmp" && mv -f -- "$marker.tmp" "$marker" ||
		fail "cannot write the marker $marker"
fi
exit "$rc"
