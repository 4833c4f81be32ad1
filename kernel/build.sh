#!/usr/bin/env bash
# Builds the DLM, GFS2 and OCFS2 kernel modules out of tree for the lab's
# guest kernel (Debian bookworm linux-image-6.1.0-56-amd64, 6.1.192-2),
# from Debian's linux-source-6.1 of exactly that version, with the patch
# series in kernel/patches applied (or none, with --stock).
#
#   kernel/build.sh [--stock] [--patches N]
#
# Prints the folder holding the stripped modules (dlm.ko, gfs2.ko,
# ocfs2*.ko, ...) on stdout. The result is cached under
# $GODLM_CACHE (default ~/.cache/godlm) in kmod-<key>, where the key is a
# hash of the source version, this script and the applied patches, so a
# second run with the same inputs builds nothing.
#
#   --stock         apply no patch
#   --patches N     apply only the first N patches of the series
#
# Needs the headers of the guest kernel (linux-headers-6.1.0-56-amd64,
# installed by scripts/prereqs.sh), gcc-12, xz and apt-get (to fetch the
# source package, checksum-pinned below). Builds with nice and -j2.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# The guest kernel is pinned in tests/lab/debian.go; the source package
# of the same version is pinned here by its checksum.
release=$(sed -n 's/^\tKernelRelease = "\(.*\)"/\1/p' "$here/../tests/lab/debian.go")
version=$(sed -n 's/^\tKernelVersion = "\(.*\)"/\1/p' "$here/../tests/lab/debian.go")
src_version=6.1.192-2
src_sha256=ae95fe63d4c553f8d0e6c86cb1ab566f3894a43743eb19ab585cd97d82f26514
if [ "$version" != "$src_version" ]; then
	echo "build.sh: the lab boots $version but the source pin is $src_version: update src_version and src_sha256" >&2
	exit 1
fi
src_deb=linux-source-6.1_${version}_all.deb

stock=0
npatches=-1
while [ $# -gt 0 ]; do
	case "$1" in
	--stock) stock=1 ;;
	--patches)
		[ $# -ge 2 ] || { echo "build.sh: --patches needs a number" >&2; exit 2; }
		npatches=$2
		shift
		;;
	*)
		echo "build.sh: unknown argument $1" >&2
		exit 2
		;;
	esac
	shift
done

cache=${GODLM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/godlm}
mkdir -p "$cache/debs"
headers=/usr/src/linux-headers-$release
if [ ! -f "$headers/Makefile" ]; then
	echo "build.sh: $headers is missing: install linux-headers-$release=$version (scripts/prereqs.sh does)" >&2
	exit 1
fi

# The patches, in series order.
patches=()
if [ $stock -eq 0 ]; then
	mapfile -t patches < <(find "$here/patches" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' ! -name '0000-*' | sort)
	if [ "$npatches" -ge 0 ]; then
		if [ "$npatches" -gt ${#patches[@]} ]; then
			echo "build.sh: --patches $npatches: the series has ${#patches[@]}" >&2
			exit 2
		fi
		patches=("${patches[@]:0:$npatches}")
	fi
fi

# Snapshot the patches, so that the key names exactly what is built even
# if the series changes meanwhile.
snap=$(mktemp -d "$cache/kpatches-XXXXXX")
work=
trap 'rm -rf "$snap" ${work:+"$work"}' EXIT
snapped=()
for p in "${patches[@]}"; do
	cp "$p" "$snap/"
	snapped+=("$snap/$(basename "$p")")
done
patches=("${snapped[@]}")

key=$( {
	echo "$release $version $src_sha256"
	cat "$0"
	for p in "${patches[@]}"; do cat "$p"; done
} | sha256sum | cut -c1-16)
out=$cache/kmod-$key

exec 9>"$cache/kbuild.lock"
flock 9
if [ -f "$out/.done" ]; then
	echo "$out"
	exit 0
fi

# The source package, fetched once and checked against the pin.
deb=$cache/debs/$src_deb
if [ ! -f "$deb" ]; then
	(cd "$cache/debs" && apt-get download -q "linux-source-6.1=$version" >&2) || {
		echo "build.sh: apt-get download linux-source-6.1=$version failed (run apt-get update?)" >&2
		exit 1
	}
fi
sum=$(sha256sum "$deb" | cut -d' ' -f1)
if [ "$sum" != "$src_sha256" ]; then
	rm -f "$deb"
	echo "build.sh: $deb: checksum $sum, want $src_sha256 (removed)" >&2
	exit 1
fi

# The parts of the source the modules need, extracted once.
src=$cache/linux-source-$version
if [ ! -f "$src/.extracted" ]; then
	rm -rf "$src"
	mkdir -p "$src"
	echo "build.sh: extracting $src_deb" >&2
	dpkg-deb --fsys-tarfile "$deb" | tar -x --to-stdout ./usr/src/linux-source-6.1.tar.xz |
		xz -T2 -dc | tar -x -C "$src" --strip-components=1 --wildcards \
			'linux-source-6.1/fs/dlm' 'linux-source-6.1/fs/gfs2' 'linux-source-6.1/fs/ocfs2' \
			'linux-source-6.1/include/linux/dlm*.h' 'linux-source-6.1/include/uapi/linux/dlm*.h' \
			'linux-source-6.1/include/trace/events/dlm.h' \
			'linux-source-6.1/Documentation/filesystems' 'linux-source-6.1/MAINTAINERS' \
			'linux-source-6.1/scripts/checkpatch.pl' 'linux-source-6.1/scripts/spelling.txt' \
			'linux-source-6.1/scripts/const_structs.checkpatch'
	touch "$src/.extracted"
fi

# A kernel-shaped scratch tree: <trace/events/dlm.h> includes
# ../../../fs/dlm/dlm_internal.h, so fs/ and include/ stay side by side
# and include/ comes before the headers tree (NOSTDINC_FLAGS).
work=$(mktemp -d "$cache/kbuild-XXXXXX")
cp -a "$src/fs" "$src/include" "$src/Documentation" "$src/MAINTAINERS" "$work/"
for p in "${patches[@]}"; do
	if ! patch -d "$work" -p1 --batch --forward --quiet <"$p" >&2; then
		echo "build.sh: $(basename "$p") does not apply" >&2
		exit 1
	fi
done

mk() {
	nice -n 10 make -s -C "$headers" NOSTDINC_FLAGS="-nostdinc -I$work/include -I$work/include/uapi" \
		-j2 "$@" modules 2>&1 | { grep -v 'Skipping BTF generation' || true; } >&2
}
echo "build.sh: building dlm, gfs2, ocfs2 (${#patches[@]} patches)" >&2
mk M="$work/fs/dlm"
mk M="$work/fs/gfs2" KBUILD_EXTRA_SYMBOLS="$work/fs/dlm/Module.symvers"
mk M="$work/fs/ocfs2" KBUILD_EXTRA_SYMBOLS="$work/fs/dlm/Module.symvers"

rm -rf "$out.tmp"
mkdir -p "$out.tmp"
find "$work/fs" -name '*.ko' | while read -r ko; do
	strip --strip-debug -o "$out.tmp/$(basename "$ko")" "$ko"
done
printf '%s\n' "${patches[@]##*/}" >"$out.tmp/series"
touch "$out.tmp/.done"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
