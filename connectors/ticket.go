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
//
// A source reads in one generation at a time (reading). Fail moves the
// counter on at once, from any goroutine, and then calls onKill, which
// takes the source's lock; between the two a source could issue a batch
// it read after the failed one. So a source issues tickets only of the
// generation it reads in and only while that is current (issueLocked),
// and moves to the current generation when it starts again from its
// acknowledged position (rewoundLocked). The Locked methods run under the
// source's own lock, which also orders them with onKill.
type generations struct {
	current atomic.Uint64
	reading uint64 // under the source's lock
	// onKill is called once per generation killed, with the failure, after
	// the counter moved on.
	onKill func(gen uint64, err error)
}

// ticket is the value of MetaTicket.
type ticket struct {
	g   *generations
	gen uint64
}

// failedLocked reports whether the generation being read was killed: the
// source must read again from its acknowledged position before it issues
// anything.
func (g *generations) failedLocked() bool { return g.current.Load() != g.reading }

// issueLocked returns a ticket of the generation being read, or nil if it
// was killed.
func (g *generations) issueLocked() *ticket {
	if g.failedLocked() {
		return nil
	}
	return &ticket{g: g, gen: g.reading}
}

// killedLocked reports whether the kill of gen concerns the generation
// being read; a kill that arrives after the source moved on is old news.
func (g *generations) killedLocked(gen uint64) bool { return gen == g.reading }

// rewoundLocked moves the source to the current generation, as it starts
// reading again from its acknowledged position.
func (g *generations) rewoundLocked() { g.reading = g.current.Load() }

// failCurrent kills the current generation, as a failure of a batch in
// it would.
func (g *generations) failCurrent(err error) bool {
	return (&ticket{g: g, gen: g.current.Load()}).Fail(err)
}

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
