#!/usr/bin/env bash
# A smoke test with kcat (librdkafka) against a running broker that creates
# topics on demand: keyed produce with acks=all, consume to the end with -e,
# -L metadata, a -G group that resumes from its commits, -Q offsets by time.
# Usage: scripts/kcat-smoke.sh HOST:PORT [TOPIC]
set -euo pipefail
b=${1:?broker address}
t=${2:-kcat-smoke-$$}
fail() { echo "kcat smoke: FAIL: $*" >&2; exit 1; }
step() { echo "kcat smoke: $*" >&2; }

step "produce 5 keyed records with acks=all to $t"
before=$(($(date +%s%3N) - 1))
printf 'k1:one\nk2:two\nk3:three\nk1:four\nk2:five\n' | timeout 60 kcat -b "$b" -P -t "$t" -p 0 -K: -X acks=all -X message.timeout.ms=30000
after=$(date +%s%3N)

step "consume from the beginning to the end (-e)"
got=$(timeout 60 kcat -b "$b" -C -t "$t" -o beginning -e -q -f '%k:%s\n')
want=$'k1:one\nk2:two\nk3:three\nk1:four\nk2:five'
[ "$got" = "$want" ] || fail "consumed:\n$got\nwanted:\n$want"

step "metadata (-L)"
meta=$(timeout 60 kcat -b "$b" -L -t "$t")
grep -q "topic \"$t\" with 1 partitions" <<<"$meta" || fail "metadata: $meta"
grep -q 'leader 1' <<<"$meta" || fail "no leader in: $meta"

step "a group (-G) reads everything, then resumes after its commits"
g="$t-group"
first=$(timeout 60 kcat -b "$b" -G "$g" -X auto.offset.reset=earliest -e -q -f '%s\n' -X auto.commit.interval.ms=100 "$t")
[ "$(wc -l <<<"$first")" -eq 5 ] || fail "the group read: $first"
printf 'six\n' | timeout 60 kcat -b "$b" -P -t "$t" -p 0 -X acks=all
second=$(timeout 60 kcat -b "$b" -G "$g" -X auto.offset.reset=earliest -e -q -f '%s\n' -X auto.commit.interval.ms=100 "$t")
[ "$second" = "six" ] || fail "the group resumed with: $second"

step "offsets by time (-Q)"
q=$(timeout 60 kcat -b "$b" -Q -t "$t:0:$before")
grep -q "offset 0" <<<"$q" || fail "offset before the first record: $q"
q=$(timeout 60 kcat -b "$b" -Q -t "$t:0:$((after + 60000))")
grep -q "offset -1" <<<"$q" || fail "offset after every record: $q"

step "OK"
