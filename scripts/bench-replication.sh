#!/usr/bin/env bash
# Replicated append (replog, through Raft) beside the storage engine's own
# append, in interleaved rounds on the same disk; medians and ratios.
# Usage: scripts/bench-replication.sh [rounds] (default 5).
# SAMSA_BENCH_DIR chooses the disk (default: .bench in the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
dir=${SAMSA_BENCH_DIR:-$PWD/.bench}
mkdir -p "$dir"
export SAMSA_BENCH_DIR=$dir
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/segment.test" ./log/segment
go test -c -o "$tmp/replog.test" ./log/replog

# field NAME: the value before unit NAME in a benchmark line.
field() { awk -v u="$1" '/^Benchmark/ { for (i = 1; i <= NF; i++) if ($i == u) print $(i-1) }'; }
declare -A mbps p50 p99
run() { # key binary bench benchtime
  local out
  out=$("$2" -test.run '^$' -test.bench "$3" -test.benchtime "$4")
  mbps[$1]+="$(echo "$out" | field MB/s) "
  p50[$1]+="$(echo "$out" | field p50-ms) "
  p99[$1]+="$(echo "$out" | field p99-ms) "
}
for ((r = 1; r <= rounds; r++)); do
  run engine-fsync10ms "$tmp/segment.test" 'Append16K/fsync-10ms$' 16384x
  run engine-nosync "$tmp/segment.test" 'Append16K/nosync$' 16384x
  run engine-fsync-each "$tmp/segment.test" 'Append16K/fsync-every-batch$' 2048x
  run engine-group "$tmp/segment.test" 'AppendGroupCommit$' 16384x
  for v in rf1/pebble rf1/tan rf3/pebble rf3/tan; do
    run "$v" "$tmp/replog.test" "BenchmarkAppend/$v\$" 6000x
  done
  echo "round $r done" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "-" }'; }
eng=$(echo "${mbps[engine-fsync10ms]}" | median)
echo
echo "| 16 KiB batches, median of $rounds interleaved rounds | MB/s | vs engine (fsync 10 ms) | commit p50 / p99 ms |"
echo "|---|---|---|---|"
echo "| storage engine, fsync every 10 ms | $eng | 100% | |"
echo "| storage engine, no fsync | $(echo "${mbps[engine-nosync]}" | median) | $(ratio "$(echo "${mbps[engine-nosync]}" | median)" "$eng") | |"
each=$(echo "${mbps[engine-fsync-each]}" | median)
echo "| storage engine, fsync after every batch | $each | $(ratio "$each" "$eng") | |"
group=$(echo "${mbps[engine-group]}" | median)
echo "| storage engine, group commit, 64 producers waiting for their fsync | $group | $(ratio "$group" "$eng") | |"
for v in rf1/pebble rf1/tan rf3/pebble rf3/tan; do
  m=$(echo "${mbps[$v]}" | median)
  echo "| replog.Append $v, acks=all, 64 in flight | $m | $(ratio "$m" "$eng") | $(echo "${p50[$v]}" | median) / $(echo "${p99[$v]}" | median) |"
done
for db in pebble tan; do
  echo "RF 1 with $db vs the engine fsyncing every batch (the durability acks=all gives): $(ratio "$(echo "${mbps[rf1/$db]}" | median)" "$each")"
  echo "RF 1 with $db vs the engine's group commit for the same 64 producers: $(ratio "$(echo "${mbps[rf1/$db]}" | median)" "$group")"
  echo "RF 3 / RF 1 with $db: $(ratio "$(echo "${mbps[rf3/$db]}" | median)" "$(echo "${mbps[rf1/$db]}" | median)")"
done
echo; echo "raw MB/s per round:"; for k in "${!mbps[@]}"; do echo "  $k: ${mbps[$k]}"; done
