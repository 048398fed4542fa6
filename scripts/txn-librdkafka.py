#!/usr/bin/env python3
"""Transactions through librdkafka (python3-confluent-kafka) against a broker.

Usage: txn-librdkafka.py BOOTSTRAP TOPIC

Commits 10 + 20 records in two transactions and aborts 20 between them,
then reads the topic from the start in both isolation levels and prints
"read_committed N read_uncommitted M". Exits non-zero on any error.
"""
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer

bootstrap, topic = sys.argv[1], sys.argv[2]

p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "rdk-tx", "linger.ms": 5})
p.init_transactions(30)


def txn(prefix, count, commit):
    p.begin_transaction()
    for i in range(count):
        p.produce(topic, value=f"{prefix}-{i}".encode(), partition=i % 2)
    p.flush(30)
    if commit:
        p.commit_transaction(30)
    else:
        p.abort_transaction(30)


txn("a", 10, True)
txn("x", 20, False)
txn("b", 20, True)


def read(level):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"rdk-read-{level}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "isolation.level": level,
    })
    c.subscribe([topic])
    seen = set()
    quiet = time.time() + 5
    deadline = time.time() + 60
    while time.time() < quiet and time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                continue
            raise KafkaException(m.error())
        seen.add(m.value().decode())
        quiet = time.time() + 3
    c.close()
    return seen


committed = read("read_committed")
uncommitted = read("read_uncommitted")
if any(v.startswith("x-") for v in committed):
    sys.exit(f"aborted records read committed: {sorted(committed)}")
print(f"read_committed {len(committed)} read_uncommitted {len(uncommitted)}")
