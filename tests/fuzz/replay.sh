#!/bin/sh
# Replays the committed fuzz corpora through the fuzz targets built without
# libFuzzer (tests/fuzz/replay_TARGET for each target below): every seed
# and every saved crash must pass the targets' invariants.  Run by
# `make check` with SRCDIR and BUILDDIR (absolute top source and build
# directories) in the environment; exits 0 on success, 1 on failure.

here=$(cd "$(dirname "$0")" && pwd)
SRCDIR=${SRCDIR:-$(cd "$here/../.." && pwd)}
BUILDDIR=${BUILDDIR:-$(pwd)}

status=0
for target in http config proxy client knobs upgrade accept; do
	prog=$BUILDDIR/tests/fuzz/replay_$target
	corpus=$SRCDIR/tests/fuzz/corpus/$target
	if [ ! -x "$prog" ]; then
		echo "replay.sh: $prog is missing (make check builds it)" >&2
		exit 1
	fi
	if [ ! -d "$corpus" ]; then
		echo "replay.sh: $corpus is missing" >&2
		exit 1
	fi
	echo "replay.sh: $target: $corpus"
	if ! "$prog" "$corpus"; then
		echo "replay.sh: $target: FAILED" >&2
		status=1
	fi
done
exit $status
