package replog

import (
	"context"
	"sync"

	"github.com/samsa-io/samsa/log/meta"
)

// producerIDBlock is how many producer ids a node reserves at once: one
// meta proposal per thousand idempotent producers.
const producerIDBlock = 1000

// producerIDs hands out the ids of a reserved block.
type producerIDs struct {
	mu         sync.Mutex
	next, last int64 // next to hand out; last of the block (next > last: none left)
}

// AllocateProducerID returns a producer id unique in the cluster, for
// Kafka's InitProducerId.
func (l *Log) AllocateProducerID(ctx context.Context) (int64, error) {
	p := &l.producerIDs
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next == 0 || p.next > p.last {
		res, err := l.meta.Propose(ctx, meta.AllocateProducerIDs{Count: producerIDBlock})
		if err != nil {
			return -1, mapReplicaError(err)
		}
		if err := res.Err(); err != nil {
			return -1, err
		}
		p.next, p.last = int64(res.Value), int64(res.Value)+producerIDBlock-1
	}
	id := p.next
	p.next++
	return id, nil
}
