#!/bin/sh
# Benchmark (not a pass/fail test): the same 50 small packages installed
# through `system-update apply --ui plain --no-reboot` and through the
# package manager alone, into identical scratch roots, for each backend:
# dpkg (against plain `dpkg -i`), rpm (`rpm -U`) and pacman (`pacman -U`).
# Prints the median wall times, their ratio (goal <= 1.05) and the peak RSS
# of apply (goal <= 16 MiB).
#
#   apply/benches/apply-vs-dpkg.sh [ROUNDS]     (as root; default 5 rounds)
#   BACKENDS="dpkg rpm pacman" BIN=path/to/system-update UI=none ...
#
# dpkg fsyncs about a thousand times for 50 packages: on a disk the run-to-run
# noise (+-15 %) hides a few per cent. TMPDIR=/dev/shm measures the work
# itself. --ui plain writes to the machine's real consoles (a 115200-baud
# serial line drains for tens of milliseconds at the end): UI=none leaves
# the UI out. BIN compares another build (the same benchmark before a change).
set -eu
# The package manager alone, BACKEND ROOT FILE...: this script runs itself
# with --native so that GNU time measures it.
native() {
	b=$1 r=$2
	shift 2
	case $b in
	dpkg) exec dpkg --root="$r" --log="$r/var/log/dpkg.log" --force-confdef --force-confold -i "$@" ;;
	rpm) exec rpm -U --force-debian --root "$r" --dbpath /var/lib/rpm "$@" ;;
	pacman)
		exec pacman --config "$BENCH_PACMAN_CONF" --root "$r" --dbpath "$r/var/lib/pacman" \
			--cachedir "$r/var/cache/pacman/pkg" --logfile "$r/var/log/pacman.log" \
			--gpgdir "$r/etc/pacman.d/gnupg" --hookdir "$r/etc/pacman.d/hooks" \
			--noconfirm --noprogressbar -U "$@"
		;;
	esac
}
if [ "${1:-}" = --native ]; then
	shift
	native "$@"
fi
self=$(realpath "$0")
cd "$(dirname "$0")/../.."
rounds=${1:-5}
bin=${BIN:-target/release/system-update}
[ -x "$bin" ] || cargo build --release -p system-update
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

# The package tree of package $1: five files of 2 KiB.
tree() {
	mkdir -p "$2/usr/share/$1"
	j=0
	while [ $j -lt 5 ]; do
		head -c 2048 /dev/urandom >"$2/usr/share/$1/file$j"
		j=$((j + 1))
	done
}

build_dpkg() {
	t=$work/src/$1
	mkdir -p "$t/DEBIAN"
	tree "$1" "$t"
	printf 'Package: %s\nVersion: 1.0\nArchitecture: all\nMaintainer: bench <b@example.invalid>\nDescription: benchmark package\n' "$1" >"$t/DEBIAN/control"
	dpkg-deb --root-owner-group --build "$t" "$work/pkgs/${1}_1.0_all.deb" >/dev/null
}

build_rpm() {
	top=$work/rpmbuild
	mkdir -p "$top/SPECS" "$top/SOURCES/$1"
	tree "$1" "$top/SOURCES/$1"
	cat >"$top/SPECS/$1.spec" <<EOF
Name: $1
Version: 1.0
Release: 1
Summary: benchmark package
License: MIT
BuildArch: noarch
%description
benchmark package
%install
mkdir -p %{buildroot}
cp -a $top/SOURCES/$1/usr %{buildroot}/
%files
/usr/share/$1
EOF
	HOME=$top rpmbuild -bb --quiet --nodeps --define "_topdir $top" \
		--define "_build_id_links none" --define "debug_package %{nil}" \
		--define "__os_install_post %{nil}" "$top/SPECS/$1.spec" >/dev/null
	cp "$top/RPMS/noarch/$1-1.0-1.noarch.rpm" "$work/pkgs/"
}

build_pacman() {
	t=$work/src/$1
	tree "$1" "$t"
	printf 'pkgname = %s\npkgver = 1.0-1\npkgdesc = benchmark package\nbuilddate = 0\nsize = 10240\narch = any\n' "$1" >"$t/.PKGINFO"
	(cd "$t" && bsdtar --zstd -cf "$work/pkgs/$1-1.0-1-any.pkg.tar.zst" --uid 0 --gid 0 .PKGINFO usr)
}

new_root() {
	rm -rf "$2"
	mkdir -p "$2/var/log" "$2/etc"
	case $1 in
	dpkg)
		mkdir -p "$2/var/lib/dpkg/info" "$2/var/lib/dpkg/updates" "$2/var/lib/dpkg/triggers"
		: >"$2/var/lib/dpkg/status"
		: >"$2/var/lib/dpkg/available"
		;;
	rpm)
		mkdir -p "$2/var/lib/rpm"
		rpm --root "$2" --dbpath /var/lib/rpm --initdb
		;;
	pacman) mkdir -p "$2/var/lib/pacman" ;;
	esac
}

printf '[options]\nArchitecture = auto\n' >"$work/pacman.conf"
export BENCH_PACMAN_CONF="$work/pacman.conf"

# Elapsed seconds and max RSS (KiB) of a command, from GNU time.
measure() {
	/usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || {
		cat "$work/stderr" >&2
		exit 1
	}
	cat "$work/time"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "rounds: $rounds, apply: $bin, UI: ${UI:-plain}"
for backend in ${BACKENDS:-dpkg rpm pacman}; do
	rm -rf "$work/pkgs" "$work/src"
	mkdir -p "$work/pkgs"
	i=0
	while [ $i -lt 50 ]; do
		"build_$backend" "bench-pkg$i"
		i=$((i + 1))
	done
	: >"$work/native.txt"
	: >"$work/apply.txt"
	r=0
	while [ $r -lt "$rounds" ]; do
		new_root "$backend" "$work/a"
		# shellcheck disable=SC2046 # the package files, one word each
		measure "$self" --native "$backend" "$work/a" $(ls "$work"/pkgs/*) >>"$work/native.txt"

		new_root "$backend" "$work/b"
		"$bin" --root "$work/b" prepare "$work"/pkgs/* >/dev/null
		"$bin" --root "$work/b" trigger --no-reboot >/dev/null
		SYSTEM_UPDATE_LOG=warn measure "$bin" --root "$work/b" apply --ui "${UI:-plain}" --no-reboot >>"$work/apply.txt"
		grep -q '"outcome": "success"' "$work/b/var/lib/system-update-results/last.json" || {
			echo "apply did not succeed ($backend)" >&2
			exit 1
		}
		r=$((r + 1))
	done
	n=$(cut -d' ' -f1 "$work/native.txt" | median)
	a=$(cut -d' ' -f1 "$work/apply.txt" | median)
	rss=$(cut -d' ' -f2 "$work/apply.txt" | sort -n | tail -1)
	nrss=$(cut -d' ' -f2 "$work/native.txt" | sort -n | tail -1)
	awk -v b="$backend" -v a="$a" -v n="$n" -v rss="$rss" -v nrss="$nrss" 'BEGIN {
		printf "%-7s native %6.2fs (peak RSS %6d KiB)  apply %6.2fs (peak RSS %6d KiB)  ratio %.3f (goal <= 1.05)\n",
			b, n, nrss, a, rss, a / n }'
done
