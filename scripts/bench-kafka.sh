#!/usr/bin/env bash
# Samsa through the Kafka protocol beside franz-go's in-memory broker
# (kfake), Samsa's log written directly, and NATS JetStream, in
# interleaved rounds on one machine; medians and ratios.
# Usage: scripts/bench-kafka.sh [rounds] (default 5).
# SAMSA_BENCH_DIR chooses the disk (default: .bench in the repository).
# JetStream's sync_interval needs nats-server 2.10: one is built from the
# Go module proxy (not kept) unless SAMSA_NATS_SERVER names one.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
dir=${SAMSA_BENCH_DIR:-$PWD/.bench}
mkdir -p "$dir"
export SAMSA_BENCH_DIR=$dir
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/kafka.test" ./engine/kafka
if [ -z "${SAMSA_NATS_SERVER:-}" ]; then
  GOBIN="$tmp" GOFLAGS=-mod=mod go install github.com/nats-io/nats-server/v2@v2.10.22
  export SAMSA_NATS_SERVER=$tmp/nats-server
fi

field() { awk -v u="$1" '/^Benchmark/ { for (i = 1; i <= NF; i++) if ($i == u) print $(i-1) }'; }
declare -A rps mbps p50 p99
run() { # key bench benchtime
  local out
  out=$("$tmp/kafka.test" -test.run '^$' -test.bench "$2" -test.benchtime "$3")
  rps[$1]+="$(echo "$out" | field records/s) "
  mbps[$1]+="$(echo "$out" | field MB/s) "
  p50[$1]+="$(echo "$out" | field p50-ms) "
  p99[$1]+="$(echo "$out" | field p99-ms) "
}
for ((r = 1; r <= rounds; r++)); do
  run samsa-100 'BenchmarkProduce/samsa/100B$' 1000000x
  run kfake-100 'BenchmarkProduce/kfake/100B$' 1000000x
  run js-default 'BenchmarkJetStream/default/100B$' 300000x
  run js-always 'BenchmarkJetStream/always/100B$' 20000x
  run samsa-1k 'BenchmarkProduce/samsa/1024B$' 300000x
  run kfake-1k 'BenchmarkProduce/kfake/1024B$' 300000x
  run overhead-kafka 'BenchmarkProtocolOverhead/kafka$' 500000x
  run overhead-replog 'BenchmarkProtocolOverhead/replog$' 500000x
  run consume 'BenchmarkConsume$' 3x
  run latency 'BenchmarkProduceLatency$' 6000x
  echo "round $r done" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }
m() { echo "${rps[$1]}" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
echo
echo "Median of $rounds interleaved rounds; records/s unless said otherwise."
echo
echo "| producer, acks=all, idempotent franz-go | 100 B records | 1 KiB records |"
echo "|---|---|---|"
echo "| Samsa (Raft fsync before every acknowledgement) | $(m samsa-100) | $(m samsa-1k) |"
echo "| franz-go kfake (in memory) | $(m kfake-100) | $(m kfake-1k) |"
echo "| NATS JetStream, async window 256, default (fsync every 2 min) | $(m js-default) | |"
echo "| NATS JetStream, async window 256, sync_interval: always | $(m js-always) | |"
echo
echo "Samsa / kfake: $(ratio "$(m samsa-100)" "$(m kfake-100)") (100 B), $(ratio "$(m samsa-1k)" "$(m kfake-1k)") (1 KiB)"
echo "Samsa / JetStream default: $(ratio "$(m samsa-100)" "$(m js-default)")×; Samsa / JetStream always: $(ratio "$(m samsa-100)" "$(m js-always)")×"
echo "Protocol overhead (16 KiB batches, 64 in flight): Kafka $(m overhead-kafka) vs replog.Append $(m overhead-replog) records/s: $(awk -v a="$(m overhead-kafka)" -v b="$(m overhead-replog)" 'BEGIN { printf "%.0f%%", 100 * (1 - a / b) }') overhead"
echo "Consume from the page cache (1 KiB records): $(echo "${mbps[consume]}" | median) MB/s"
echo "Produce latency at 2,000 records/s, one record at a time: p50 $(echo "${p50[latency]}" | median) ms, p99 $(echo "${p99[latency]}" | median) ms"
echo; echo "raw records/s per round:"; for k in "${!rps[@]}"; do echo "  $k: ${rps[$k]}"; done
