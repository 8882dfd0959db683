#!/bin/sh
# Benchmark (not a pass/fail test): the same 50 small packages installed
# through `system-update apply --ui plain --no-reboot` and through a plain
# `dpkg -i`, into identical scratch roots. Prints the median wall times, their
# ratio (goal <= 1.05) and the peak RSS of apply (goal <= 16 MiB).
#
#   apply/benches/apply-vs-dpkg.sh [ROUNDS]     (as root; default 5 rounds)
#
# dpkg fsyncs about a thousand times for 50 packages: on a disk the run-to-run
# noise (+-15 %) hides a few per cent. TMPDIR=/dev/shm measures the work
# itself. --ui plain writes to the machine's real consoles (a 115200-baud
# serial line drains for tens of milliseconds at the end): UI=none leaves
# the UI out.
set -eu
cd "$(dirname "$0")/../.."
rounds=${1:-5}
bin=target/release/system-update
[ -x "$bin" ] || cargo build --release -p system-update
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/debs"
i=0
while [ $i -lt 50 ]; do
	p=bench-pkg$i
	t=$work/src/$p
	mkdir -p "$t/DEBIAN" "$t/usr/share/$p"
	printf 'Package: %s\nVersion: 1.0\nArchitecture: all\nMaintainer: bench <b@example.invalid>\nDescription: benchmark package\n' "$p" >"$t/DEBIAN/control"
	j=0
	while [ $j -lt 5 ]; do
		head -c 2048 /dev/urandom >"$t/usr/share/$p/file$j"
		j=$((j + 1))
	done
	dpkg-deb --root-owner-group --build "$t" "$work/debs/${p}_1.0_all.deb" >/dev/null
	i=$((i + 1))
done

new_root() {
	rm -rf "$1"
	mkdir -p "$1/var/lib/dpkg/info" "$1/var/lib/dpkg/updates" "$1/var/lib/dpkg/triggers" "$1/var/log" "$1/etc"
	: >"$1/var/lib/dpkg/status"
	: >"$1/var/lib/dpkg/available"
}

# Elapsed seconds and max RSS (KiB) of a command, from GNU time.
measure() {
	/usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || {
		cat "$work/stderr" >&2
		exit 1
	}
	cat "$work/time"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: >"$work/dpkg.txt"
: >"$work/apply.txt"
r=0
while [ $r -lt "$rounds" ]; do
	new_root "$work/a"
	measure dpkg --root="$work/a" --log="$work/a/var/log/dpkg.log" \
		--force-confdef --force-confold -i "$work"/debs/*.deb >>"$work/dpkg.txt"

	new_root "$work/b"
	"$bin" --root "$work/b" prepare "$work"/debs/*.deb >/dev/null
	"$bin" --root "$work/b" trigger --no-reboot >/dev/null
	SYSTEM_UPDATE_LOG=warn measure "$bin" --root "$work/b" apply --ui "${UI:-plain}" --no-reboot >>"$work/apply.txt"
	grep -q '"outcome": "success"' "$work/b/var/lib/system-update-results/last.json" || {
		echo "apply did not succeed" >&2
		exit 1
	}
	r=$((r + 1))
done

d=$(cut -d' ' -f1 "$work/dpkg.txt" | median)
a=$(cut -d' ' -f1 "$work/apply.txt" | median)
rss=$(cut -d' ' -f2 "$work/apply.txt" | sort -n | tail -1)
drss=$(cut -d' ' -f2 "$work/dpkg.txt" | sort -n | tail -1)
echo "rounds:              $rounds"
echo "dpkg -i (median):    ${d}s   peak RSS ${drss} KiB"
echo "apply (median):      ${a}s   peak RSS ${rss} KiB (apply and its dpkg child, the larger)"
awk -v a="$a" -v d="$d" 'BEGIN { printf "ratio apply/dpkg:    %.3f (goal <= 1.05)\n", a / d }'
