package connectors

import (
	"context"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session"
)

// mqttConfirmEvery is how often the input confirms the PUBACKs it sent.
const mqttConfirmEvery = 25 * time.Millisecond

// confirmLoop confirms the PUBACKs written on the current connection:
// every mqttConfirmEvery, if messages whose PUBACK paho wrote wait in the
// pubacks, it sends an UNSUBSCRIBE of a filter the input never subscribed
// to and, once the broker answers, drops them: a broker reads a
// connection's packets in order, so it read the PUBACKs written before the
// request. The checkpoint then holds only the messages acknowledged in the
// last moments.
func (in *mqttInput) confirmLoop() {
	defer in.wg.Done()
	t := time.NewTicker(mqttConfirmEvery)
	defer t.Stop()
	topic := "samsa-confirm/" + in.clientID
	for {
		select {
		case <-t.C:
		case <-in.done:
			return
		}
		in.mu.Lock()
		c, gen, upTo := in.mu.client, in.mu.gen, in.mu.writes
		need := c != nil && in.mu.pubAcks.confirmable(gen, in.mu.written, upTo)
		in.mu.Unlock()
		if !need {
			continue
		}
		ctx, cancel := context.WithTimeout(in.ctx, mqttConnectTimeout)
		_, err := c.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{topic}})
		cancel()
		if err != nil {
			continue // the connection is going: its messages wait for the next
		}
		in.mu.Lock()
		if gen == in.mu.gen && in.mu.pubAcks.confirm(gen, in.mu.written, upTo) {
			in.mu.seq++
			signal(in.storeWake)
		}
		in.mu.Unlock()
	}
}

// written records that paho wrote the PUBACK of packet pid on connection
// gen (see mqttAckSession).
func (in *mqttInput) written(gen uint64, pid uint16) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if gen == in.mu.gen {
		in.mu.writes++
		in.mu.written[pid] = in.mu.writes
	}
}

// mqttAckSession is paho's session state, telling the input which PUBACKs
// it wrote to the connection (paho sends them from a goroutine of its own,
// in order, some time after Client.Ack). paho does not close a session it
// was given; an in-memory one needs no closing.
type mqttAckSession struct {
	session.SessionManager
	written func(pid uint16)
}

func (s mqttAckSession) Ack(pb *packets.Publish) error {
	err := s.SessionManager.Ack(pb)
	if err == nil && pb.QoS == 1 {
		s.written(pb.PacketID)
	}
	return err
}

// mqttPubAck is a QoS 1 message without a dedupe id that the input stored
// and took out of its checkpoint to acknowledge: the broker may not have
// received its PUBACK (the node died, the connection dropped), and then it
// sends the message again, with the same packet identifier and DUP set
// (MQTT 3.1.1 and 5 §4.4), on the session's next connection.
type mqttPubAck struct {
	pid uint16 // the packet identifier it was delivered with
	key uint64 // mqttHashPublish: packet identifier, topic and payload
	// Not in the checkpoint: the connection it is acknowledged on (0 for
	// those read from the checkpoint).
	gen uint64
}

// mqttPubAcks holds the messages acknowledged without a dedupe id whose
// PUBACK may not have reached the broker, oldest first: a redelivery (DUP)
// that matches one was stored already and is only acknowledged again.
//
// A message leaves when its PUBACK is confirmed: a request answered on its
// connection after the PUBACK was sent (see mqttInput.confirmLoop) shows
// that the broker read it, since a broker reads a connection's packets in
// order. The messages of a connection that went leave when the next one
// delivers its first new message (not DUP): a broker sends the messages in
// flight again first. Without either (a connection that stopped
// answering) the ring grows up to the packet identifier space, the most a
// broker can have in flight: the receive maximum does not bound it
// (Mosquitto 2.0 exceeds it after a session resumes).
//
// A packet identifier is free for the broker to use again once it has the
// PUBACK. A message that arrives without DUP under an identifier held here
// proves that, so the entries of that identifier are dropped: a later
// redelivery under it is of the new message. Brokers that number their
// packets in turn (Mosquitto) reuse an identifier only after 65,535 others,
// far more than are held here; the hash of topic and payload guards the
// rest.
type mqttPubAcks struct {
	buf  []mqttPubAck // a ring of size entries, grown as needed; key 0: dropped
	size int
	head int // the oldest, once full
	keys map[uint64]int
	pids map[uint16]int
}

func newMQTTPubAcks(size int) mqttPubAcks {
	return mqttPubAcks{size: size, keys: map[uint64]int{}, pids: map[uint16]int{}}
}

// has reports whether a message of identity key was acknowledged.
func (r *mqttPubAcks) has(key uint64) bool { return r.keys[key] > 0 }

// push records a message acknowledged, forgetting the oldest if full.
func (r *mqttPubAcks) push(a mqttPubAck) {
	if r.size == 0 || a.key == 0 {
		return
	}
	if len(r.buf) < r.size {
		r.buf = append(r.buf, a)
	} else {
		r.forget(r.buf[r.head])
		r.buf[r.head] = a
		r.head = (r.head + 1) % len(r.buf)
	}
	r.keys[a.key]++
	r.pids[a.pid]++
}

// reused drops the entries of packet identifier pid, which the broker has
// given a new message, and reports whether there were any.
func (r *mqttPubAcks) reused(pid uint16) bool {
	if r.pids[pid] == 0 {
		return false
	}
	for i := range r.buf {
		if a := r.buf[i]; a.key != 0 && a.pid == pid {
			r.forget(a)
			r.buf[i] = mqttPubAck{}
		}
	}
	return true
}

// confirmable reports whether a message of connection gen whose PUBACK
// was written (written: packet id → the count of PUBACKs written then) up
// to upTo waits for confirmation.
func (r *mqttPubAcks) confirmable(gen uint64, written map[uint16]uint64, upTo uint64) bool {
	for _, a := range r.buf {
		if w := written[a.pid]; a.key != 0 && a.gen == gen && w != 0 && w <= upTo {
			return true
		}
	}
	return false
}

// confirm drops the messages of connection gen whose PUBACK was written up
// to upTo, and their packet ids from written: the broker read the PUBACKs.
// It reports whether there were any.
func (r *mqttPubAcks) confirm(gen uint64, written map[uint16]uint64, upTo uint64) bool {
	found := false
	for i, a := range r.buf {
		if w := written[a.pid]; a.key != 0 && a.gen == gen && w != 0 && w <= upTo {
			r.forget(a)
			r.buf[i] = mqttPubAck{}
			delete(written, a.pid)
			found = true
		}
	}
	return found
}

// dropBefore drops the messages of connections before gen (and those read
// from the checkpoint): gen delivered its first new message, and a broker
// sends the messages in flight again before new ones.
func (r *mqttPubAcks) dropBefore(gen uint64) bool {
	found := false
	for i, a := range r.buf {
		if a.key != 0 && a.gen < gen {
			r.forget(a)
			r.buf[i] = mqttPubAck{}
			found = true
		}
	}
	return found
}

// reset forgets everything: the broker kept no session, so it sends
// nothing again.
func (r *mqttPubAcks) reset() {
	*r = newMQTTPubAcks(r.size)
}

func (r *mqttPubAcks) forget(a mqttPubAck) {
	if a.key == 0 {
		return
	}
	if r.keys[a.key]--; r.keys[a.key] <= 0 {
		delete(r.keys, a.key)
	}
	if r.pids[a.pid]--; r.pids[a.pid] <= 0 {
		delete(r.pids, a.pid)
	}
}

// appendTo appends the entries, oldest first.
func (r *mqttPubAcks) appendTo(dst []mqttPubAck) []mqttPubAck {
	for _, part := range [][]mqttPubAck{r.buf[r.head:], r.buf[:r.head]} {
		for _, a := range part {
			if a.key != 0 {
				dst = append(dst, mqttPubAck{pid: a.pid, key: a.key})
			}
		}
	}
	return dst
}
