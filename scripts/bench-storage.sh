#!/usr/bin/env bash
# Append throughput of log/segment beside dd on the same disk, measured in
# interleaved rounds so both see the same machine, and reported as medians
# and ratios. Usage: scripts/bench-storage.sh [rounds] (default 5).
# SAMSA_BENCH_DIR chooses the disk (default: .bench in the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
dir=${SAMSA_BENCH_DIR:-$PWD/.bench}
mkdir -p "$dir"
export SAMSA_BENCH_DIR=$dir
bin=$(mktemp -d)/segment.test
trap 'rm -rf "$(dirname "$bin")" "$dir"/dd.bin' EXIT
go test -c -o "$bin" ./log/segment

# 1 GiB each: dd in 1 MiB blocks; the benchmark in 16 KiB batches (65,536).
mbps() { awk '/MB\/s/ { for (i = 1; i <= NF; i++) if ($i == "MB/s") print $(i-1) }'; }
dd_rate() {
  dd if=/dev/zero of="$dir/dd.bin" bs=1M count=1024 conv=fdatasync 2>&1 |
    awk '/copied/ { v = $(NF-1); u = $NF; if (u == "GB/s") v *= 1000; if (u == "kB/s") v /= 1000; print v }'
  rm -f "$dir/dd.bin"
}
declare -A runs
for ((r = 1; r <= rounds; r++)); do
  runs[dd]+="$(dd_rate) "
  for mode in fsync-10ms nosync; do
    runs[$mode]+="$("$bin" -test.run '^$' -test.bench "Append16K/$mode\$" -test.benchtime 65536x | mbps) "
  done
  runs[fsync-every-batch]+="$("$bin" -test.run '^$' -test.bench 'Append16K/fsync-every-batch$' -test.benchtime 4096x | mbps) "
  echo "round $r: dd ${runs[dd]##* }" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }
dd_med=$(echo "${runs[dd]}" | median)
echo
echo "| writer ($rounds interleaved rounds, 1 GiB each) | median MB/s | vs dd |"
echo "|---|---|---|"
echo "| dd bs=1M conv=fdatasync | $dd_med | 100% |"
for mode in fsync-10ms nosync fsync-every-batch; do
  m=$(echo "${runs[$mode]}" | median)
  echo "| segment append 16 KiB, $mode | $m | $(awk -v a="$m" -v b="$dd_med" 'BEGIN { printf "%.0f%%", 100 * a / b }') |"
done
echo
echo "raw MB/s per round:"; for k in dd fsync-10ms nosync fsync-every-batch; do echo "  $k: ${runs[$k]}"; done
