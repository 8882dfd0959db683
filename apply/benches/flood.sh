#!/bin/sh
# Benchmark (not a pass/fail test): apply with a command backend that floods
# its output, to show memory and the log stay bounded (issue 10; goal: under
# 32 MiB peak RSS). Two floods, each on a fresh scratch root:
#   line   one 400 MB line without a newline
#   yes    `timeout 10 yes`: ten seconds of "y" lines
# Prints peak RSS (/usr/bin/time), the log's size and the wall time.
#
#   apply/benches/flood.sh [BINARY]     (as root; default target/release/system-update)
#
# TMPDIR=/dev/shm keeps the disk out of the figures.
set -eu
cd "$(dirname "$0")/../.."
bin=${1:-target/release/system-update}
if [ "$bin" = target/release/system-update ]; then
	cargo build --release -q -p system-update
fi
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

flood() {
	name=$1
	shift
	root=$work/$name
	mkdir -p "$root/etc" "$root/var/lib/dpkg"
	: >"$root/var/lib/dpkg/status"
	"$bin" --root "$root" prepare --command "$@" >/dev/null
	"$bin" --root "$root" trigger --no-reboot >/dev/null
	t0=$(date +%s.%N)
	/usr/bin/time -f %M -o "$work/rss" "$bin" --root "$root" apply --ui none --no-reboot >/dev/null 2>"$work/stderr" || true
	t1=$(date +%s.%N)
	log=$(find "$root/var/log/system-update" -name '*.log' | head -n 1)
	printf '%-6s peak RSS %6d KiB   log %10d bytes   %6.1f s\n' "$name" \
		"$(tail -n 1 "$work/rss")" "$(stat -c %s "$log")" "$(awk "BEGIN { print $t1 - $t0 }")"
}

echo "binary: $bin"
flood line /bin/sh -c "head -c 400000000 /dev/zero | tr '\\0' x"
flood yes /usr/bin/timeout 10 yes
