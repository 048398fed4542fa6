#!/usr/bin/env bash
# Produce and consume throughput on a local three-node cluster (samsa dev
# cluster): a topic with replication factor 1 beside one with 3, both with
# three partitions (one led by each node), in interleaved rounds; medians
# and the RF 3 / RF 1 ratio. Every node shares this machine's cores and disk.
# Usage: scripts/bench-cluster.sh [rounds] [records] (default 3, 200000).
# SAMSA_BENCH_DIR chooses the disk (default: .bench in the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
records=${2:-200000}
dir=${SAMSA_BENCH_DIR:-$PWD/.bench}
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/cluster-XXXXXX")
go build -o "$tmp/samsa" ./cmd/samsa
"$tmp/samsa" dev cluster --nodes 3 --data-dir "$tmp/data" --kafka-port 29092 --raft-port 29192 --http-port 29292 >"$tmp/cluster.log" 2>&1 &
cluster=$!
trap 'st=$?; [ $st -eq 0 ] || tail -40 "$tmp/cluster.log" >&2; kill -INT $cluster 2>/dev/null; wait $cluster 2>/dev/null; rm -rf "$tmp"' EXIT
export SAMSA_BROKERS=127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094
for _ in $(seq 120); do "$tmp/samsa" cluster health >/dev/null 2>&1 && break; sleep 0.5; done
for rf in 1 3; do "$tmp/samsa" topics create "rf$rf" --partitions 3 --replication-factor "$rf" >/dev/null; done
# Wait until each node leads the partitions it is the preferred replica of.
for _ in $(seq 60); do "$tmp/samsa" cluster rebalance >/dev/null 2>&1 && break; sleep 1; done

json() { sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p" | awk '{ printf "%.0f", $1 }'; }
declare -A prod cons p99
for ((r = 1; r <= rounds; r++)); do
  for rf in 1 3; do
    out=$("$tmp/samsa" bench produce -t "rf$rf" -n "$records" -s 1024 --acks all -o json)
    prod[$rf]+="$(echo "$out" | json mb_per_sec) "
    p99[$rf]+="$(echo "$out" | json p99_ms) "
  done
  for rf in 1 3; do
    out=$("$tmp/samsa" bench consume -t "rf$rf" -n $((records * r)) -o json)
    cons[$rf]+="$(echo "$out" | json mb_per_sec) "
  done
  echo "round $r done" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
p1=$(echo "${prod[1]}" | median) p3=$(echo "${prod[3]}" | median)
c1=$(echo "${cons[1]}" | median) c3=$(echo "${cons[3]}" | median)
echo
echo "| 3 nodes, 3 partitions, 1 KiB records, median of $rounds rounds | produce MB/s (acks=all) | produce p99 ms | consume MB/s |"
echo "|---|---|---|---|"
echo "| replication factor 1 | $p1 | $(echo "${p99[1]}" | median) | $c1 |"
echo "| replication factor 3 | $p3 | $(echo "${p99[3]}" | median) | $c3 |"
echo "| RF 3 / RF 1 | $(ratio "$p3" "$p1") | | $(ratio "$c3" "$c1") |"
echo; echo "raw MB/s per round: produce rf1: ${prod[1]}; rf3: ${prod[3]}; consume rf1: ${cons[1]}; rf3: ${cons[3]}"
