#!/usr/bin/env bash
# Checks the patch series in kernel/patches against the pinned kernel
# source (see build.sh):
#   - checkpatch.pl --strict, from that source, reports nothing on any patch;
#   - the series applies, and every prefix of it (0, 1, ... N patches)
#     builds the DLM, GFS2 and OCFS2 modules, so the series is bisectable.
# Builds are cached by build.sh, so a second run only re-checks.
#
#   kernel/check.sh [--no-build]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=1
[ "${1:-}" = "--no-build" ] && build=0

mapfile -t patches < <(find "$here/patches" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name '0000-*' | sort)
if [ ${#patches[@]} -eq 0 ]; then
	echo "check.sh: no patches in $here/patches" >&2
	exit 1
fi

# build.sh fetches and extracts the source; the stock build comes first.
"$here/build.sh" --stock >/dev/null
cache=${GODLM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/godlm}
version=$(sed -n 's/^\tKernelVersion = "\(.*\)"/\1/p' "$here/../tests/lab/debian.go")
src=$cache/linux-source-$version

fail=0
for p in "${patches[@]}"; do
	# --no-tree: only the parts of the source the modules need are extracted.
	if ! out=$(perl "$src/scripts/checkpatch.pl" --no-tree --strict --quiet "$p" 2>&1) || [ -n "$out" ]; then
		echo "check.sh: checkpatch --strict: $(basename "$p"):" >&2
		echo "$out" >&2
		fail=1
	else
		echo "check.sh: checkpatch --strict clean: $(basename "$p")" >&2
	fi
done

if [ $build -eq 1 ]; then
	for i in $(seq 1 ${#patches[@]}); do
		if dir=$("$here/build.sh" --patches "$i"); then
			echo "check.sh: builds with patches 1-$i: $dir" >&2
		else
			echo "check.sh: does not build with patches 1-$i ($(basename "${patches[$((i - 1))]}"))" >&2
			fail=1
		fi
	done
fi

if [ $fail -ne 0 ]; then
	echo "check.sh: FAILED" >&2
	exit 1
fi
echo "check.sh: ok (${#patches[@]} patches)" >&2
