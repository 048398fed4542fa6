package connectors

import (
	"sync/atomic"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// MetaTicket is the metadata key of a source record's ticket: a value with
// methods Live() bool and Fail(error), shared by the records of a batch.
//
// A source keeps several batches in flight, so that reading and processing
// the next batch overlaps writing the previous one. Within one stream they
// reach each partition in the order they were read (one processing thread,
// one write at a time per output, and a failed write retried in place); the
// only way a later batch could be stored ahead of an earlier one is that
// the earlier one fails: it is rejected, the source reads it again, and the
// partition would then drop it as below what it holds. So a failure kills
// the batch's generation instead: whoever sees it fail (the topic output
// whose write failed, a stage that lets a record fail, the source's own
// nack) calls Fail, the source starts a new generation from its
// acknowledged position, and the outputs write nothing of a dead ticket.
// Outputs see Fail before they start their next write, so what each
// partition holds of a generation is an unbroken prefix of it, and the
// partition's duplicate check makes the rest come out exactly once.
const MetaTicket = "samsa_ticket"

// generations is a source's generation counter. The zero value is
// generation 0, live.
type generations struct {
	current atomic.Uint64
	// onKill is called once per generation killed, with the failure, after
	// the counter moved on.
	onKill func(gen uint64, err error)
}

// ticket is the value of MetaTicket.
type ticket struct {
	g   *generations
	gen uint64
}

// issue returns a ticket of the current generation.
func (g *generations) issue() *ticket { return &ticket{g: g, gen: g.current.Load()} }

// Live reports whether the ticket's generation is current: its records may
// be written.
func (t *ticket) Live() bool { return t.g.current.Load() == t.gen }

// Fail kills the ticket's generation if it is current, so that the source
// reads again from its acknowledged position. It reports whether it did.
func (t *ticket) Fail(err error) bool {
	if !t.g.current.CompareAndSwap(t.gen, t.gen+1) {
		return false
	}
	if t.g.onKill != nil {
		t.g.onKill(t.gen, err)
	}
	return true
}

// liveTicket reports whether m may be written: it has no ticket, or a live
// one.
func liveTicket(m *service.Message) bool {
	v, ok := m.MetaGetMut(MetaTicket)
	if !ok {
		return true
	}
	t, ok := v.(interface{ Live() bool })
	return !ok || t.Live()
}

// failTickets kills the generations of the messages' tickets.
func failTickets(msgs service.MessageBatch, err error) {
	var last any
	for _, m := range msgs {
		v, ok := m.MetaGetMut(MetaTicket)
		if !ok || v == last {
			continue
		}
		last = v
		if t, ok := v.(interface{ Fail(error) bool }); ok {
			t.Fail(err)
		}
	}
}
