#!/usr/bin/env bash
# Pipelines of the quickstart's shape (file → validate → transform →
# topic) beside Benthos alone moving the same file through the same
# mapping into a file with the same batching, in interleaved rounds on one
# machine; and end-to-end latency from a line appended to its arrival at a
# sink, at 10,000 records/s. Medians and ratios.
# Usage: scripts/bench-pipelines.sh [rounds] (default 5).
# SAMSA_BENCH_DIR chooses the disk (default: .bench in the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
dir=${SAMSA_BENCH_DIR:-$PWD/.bench}
mkdir -p "$dir"
export SAMSA_BENCH_DIR=$dir
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/pipelines.test" ./pipelines

field() { awk -v u="$1" '/^Benchmark/ { for (i = 1; i <= NF; i++) if ($i == u) print $(i-1) }'; }
declare -A rps p50 p99 mx
run() { # key bench benchtime
  local out
  out=$("$tmp/pipelines.test" -test.run '^$' -test.bench "$2" -test.benchtime "$3")
  rps[$1]+="$(echo "$out" | field records/s) "
  p50[$1]+="$(echo "$out" | field p50-ms) "
  p99[$1]+="$(echo "$out" | field p99-ms) "
  mx[$1]+="$(echo "$out" | field max-ms) "
}
for ((r = 1; r <= rounds; r++)); do
  run samsa 'BenchmarkQuickstartShape/samsa$' 2x
  run benthos 'BenchmarkQuickstartShape/benthos$' 2x
  run benthos-validate 'BenchmarkQuickstartShape/benthos-validate$' 2x
  run latency 'BenchmarkEndToEndLatency$' 50000x
  echo "round $r done" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }
m() { echo "${rps[$1]}" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "-" }'; }
echo
echo "Median of $rounds interleaved rounds, 200,000 lines of ~150 B each."
echo
echo "| | records/s |"
echo "|---|---|"
echo "| Samsa: file → validate (Avro) → transform → topic (2 partitions, Raft fsync) | $(m samsa) |"
echo "| Benthos alone: file → the same mapping → file, batches of 1024 | $(m benthos) |"
echo "| Benthos alone, with Samsa's validate stage too | $(m benthos-validate) |"
echo
echo "Samsa / Benthos alone: $(ratio "$(m samsa)" "$(m benthos)"); / Benthos with validation: $(ratio "$(m samsa)" "$(m benthos-validate)")"
echo "End to end, line appended → sink, 10,000 records/s: p50 $(echo "${p50[latency]}" | median) ms, p99 $(echo "${p99[latency]}" | median) ms, max $(echo "${mx[latency]}" | median) ms"
echo; echo "raw records/s per round:"; for k in "${!rps[@]}"; do echo "  $k: ${rps[$k]}"; done
