#!/usr/bin/env bash
# Installs what godlm's tests, demo and benchmarks need on a Debian
# bookworm host, when it is missing: QEMU, the mkfs tools for the shared
# disks, xz, a C compiler and the kernel headers, and current package lists (the VM lab fetches the guest
# kernel and tools with `apt-get download`). Runs apt-get as root, or
# through sudo. Does nothing when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have qemu-system-x86_64 || need_pkgs+=(qemu-system-x86)
have mkfs.gfs2 || need_pkgs+=(gfs2-utils)
have mkfs.ocfs2 || need_pkgs+=(ocfs2-tools)
have xz || need_pkgs+=(xz-utils)
have dpkg-deb || need_pkgs+=(dpkg)
# libdlm's ABI test compiles a C program against the kernel UAPI headers.
have cc || need_pkgs+=(gcc libc6-dev)
[ -f /usr/include/linux/dlm_device.h ] || need_pkgs+=(linux-libc-dev)
# make bench builds a C program against the reference libdlm.
[ -f /usr/include/libdlm.h ] || need_pkgs+=(libdlm-dev)

if ! have go; then
	echo "prereqs: Go 1.26 or later is needed (https://go.dev/doc/install); it is not on PATH" >&2
	exit 1
fi

# The guest kernel is pinned in tests/lab/debian.go; apt must know it.
rel=$(sed -n 's/^\tKernelRelease = "\(.*\)"/\1/p' tests/lab/debian.go)
ver=$(sed -n 's/^\tKernelVersion = "\(.*\)"/\1/p' tests/lab/debian.go)
# kernel/build.sh builds the DLM, GFS2 and OCFS2 modules, stock or
# patched, against the guest kernel's headers.
[ -f "/usr/src/linux-headers-$rel/Makefile" ] || need_pkgs+=("linux-headers-$rel=$ver")
have patch || need_pkgs+=(patch)
# systemd's unit test runs systemd-analyze verify.
have systemd-analyze || need_pkgs+=(systemd)
cache=${GODLM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/godlm}
need_lists=0
if [ ! -f "$cache/debs/linux-image-${rel}_${ver}_amd64.deb" ] &&
	! apt-cache show "linux-image-$rel=$ver" >/dev/null 2>&1; then
	need_lists=1
fi
if ! apt-cache show busybox-static >/dev/null 2>&1; then
	need_lists=1
fi

[ ${#need_pkgs[@]} -eq 0 ] && [ $need_lists -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if ! have sudo; then
		echo "prereqs: need root or sudo to install: ${need_pkgs[*]:-package lists}" >&2
		exit 1
	fi
	sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
echo "prereqs: apt-get update" >&2
"${sudo[@]}" apt-get update -q >/dev/null
if [ ${#need_pkgs[@]} -gt 0 ]; then
	echo "prereqs: installing ${need_pkgs[*]}" >&2
	"${sudo[@]}" apt-get install -y -q --no-install-recommends -o APT::Get::Upgrade-By-Source-Package=false "${need_pkgs[@]}" >/dev/null
fi
if [ ! -f "$cache/debs/linux-image-${rel}_${ver}_amd64.deb" ] &&
	! apt-cache show "linux-image-$rel=$ver" >/dev/null 2>&1; then
	echo "prereqs: Debian no longer offers linux-image-$rel $ver; update the pin in tests/lab/debian.go" >&2
	exit 1
fi
