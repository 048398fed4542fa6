package kafka

import (
	"context"
	"reflect"
	"time"

	"github.com/samsa-io/samsa/log/replog"
	"github.com/samsa-io/samsa/log/segment"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch v4–11 (librdkafka needs 4 in the range, kafka-go a maximum of at
// least 5). Each partition returns whole batches from the one holding the
// fetch offset — at least one batch even above the partition's limit, as
// long as the response has room, and the first partition with data always
// gets one — up to the high watermark, or under read_committed (isolation
// level 1) up to the last stable offset, a batch boundary, with the
// aborted transactions from the fetch offset up to it (a superset of those
// in the records returned, as Kafka's segment-bounded list is). Every
// partition answers its last stable offset. The request long-polls across
// all its partitions until min_bytes arrive, max_wait_ms passes, or a
// partition answers with an error. Fetch sessions are declined (session
// id 0).
//
// The response is written by hand, as encoded pieces between which the
// records go from the segment files to the socket by sendfile: versions
// 4–11 are not flexible, so each records field is a 4-byte length and
// then the bytes.

func (s *Server) startFetch(ctx context.Context, c *conn, req kmsg.Request) func() (reply, error) {
	r := req.(*kmsg.FetchRequest)
	return func() (reply, error) { return s.fetch(ctx, r), nil }
}

// fetched is one partition's part of a response.
type fetched struct {
	partition       int32
	code            int16
	hwm, lso, start int64
	aborted         []replog.AbortedTxn
	secs            []segment.Section
	bytes           int64
	changed         <-chan struct{}
}

func (s *Server) fetch(ctx context.Context, r *kmsg.FetchRequest) reply {
	if r.SessionID != 0 { // never handed out: the client must start over
		return reply{fetch: encodeFetch(r, kerr.FetchSessionIDNotFound.Code, nil)}
	}
	deadline := time.Now().Add(time.Duration(r.MaxWaitMillis) * time.Millisecond)
	maxBytes := int64(r.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1 << 31
	}
	for {
		topics, total, failed := s.readFetch(r, maxBytes)
		if total >= int64(r.MinBytes) || failed || !time.Now().Before(deadline) || s.isDraining() {
			s.metrics.fetched.Add(float64(total))
			return reply{fetch: encodeFetch(r, 0, topics)}
		}
		var changed []<-chan struct{}
		for _, t := range topics {
			for _, p := range t {
				segment.Release(p.secs)
				if p.changed != nil {
					changed = append(changed, p.changed)
				}
			}
		}
		// Woken by new records or by the deadline: read again either way,
		// so that the answer names every partition with its watermarks.
		if !waitAny(ctx, s.draining, changed, deadline) && ctx.Err() != nil {
			return reply{fetch: encodeFetch(r, 0, nil)} // the connection is closing
		}
	}
}

func (s *Server) isDraining() bool {
	select {
	case <-s.draining:
		return true
	default:
		return false
	}
}

// readFetch reads every requested partition once. It reports the bytes
// of records read and whether a partition answered with an error.
func (s *Server) readFetch(r *kmsg.FetchRequest, maxBytes int64) (topics [][]fetched, total int64, failed bool) {
	topics = make([][]fetched, len(r.Topics))
	for i, t := range r.Topics {
		topics[i] = make([]fetched, len(t.Partitions))
		for j, p := range t.Partitions {
			f := &topics[i][j]
			f.partition, f.hwm, f.lso, f.start = p.Partition, -1, -1, -1
			tp := replog.TopicPartition{Topic: t.Topic, Partition: p.Partition}
			err := s.checkLeaderEpoch(tp, p.CurrentLeaderEpoch)
			if err == nil {
				// The channel is taken before reading: nothing appended
				// between the read and the wait is missed.
				f.changed, err = s.log.Changed(tp)
			}
			if err == nil {
				budget := min(int64(p.PartitionMaxBytes), maxBytes-total)
				if budget <= 0 && total > 0 {
					// The last stable offset first: it is then at or
					// below the high watermark read after it.
					if f.lso, err = s.log.LastStableOffset(tp); err == nil {
						f.start, f.hwm, err = s.log.Offsets(tp)
					}
				} else {
					read := s.log.Read
					if r.IsolationLevel == 1 {
						read = s.log.ReadCommitted
					}
					var res replog.ReadResult
					res, err = read(tp, p.FetchOffset, int(max(budget, 1)), nil)
					f.secs, f.hwm, f.lso, f.start = res.Sections, res.HighWatermark, res.LastStableOffset, res.LogStartOffset
					f.aborted = res.Aborted
					f.bytes = res.Bytes()
					total += f.bytes
				}
			}
			if err != nil {
				f.code = s.errCode(err)
				failed = true
			}
		}
	}
	return topics, total, failed
}

// checkLeaderEpoch fences a client that knows an older leader (v9+), and
// tells one that knows a newer leader than this node does to retry.
func (s *Server) checkLeaderEpoch(tp replog.TopicPartition, current int32) error {
	if current < 0 {
		return nil
	}
	info, err := s.log.PartitionInfo(tp)
	switch {
	case err != nil:
		return err
	case current < info.LeaderEpoch:
		return kerr.FencedLeaderEpoch
	case current > info.LeaderEpoch:
		return kerr.UnknownLeaderEpoch
	}
	return nil
}

// waitAny waits until one of the channels closes, the deadline passes, the
// server starts draining or ctx ends; it reports whether a channel closed.
func waitAny(ctx context.Context, draining <-chan struct{}, chans []<-chan struct{}, deadline time.Time) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	cases := make([]reflect.SelectCase, 0, len(chans)+3)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(draining)})
	for _, ch := range chans {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen >= 3
}

// encodeFetch writes the response body: pieces of encoded fields, and
// each partition's sections as its records.
func encodeFetch(r *kmsg.FetchRequest, topErr int16, topics [][]fetched) *fetchReply {
	f := &fetchReply{}
	v := r.Version
	b := kbin.AppendInt32(nil, 0) // throttle_time_ms
	if v >= 7 {
		b = kbin.AppendInt16(b, topErr)
		b = kbin.AppendInt32(b, 0) // session id: declined
	}
	b = kbin.AppendArrayLen(b, len(topics))
	for i, parts := range topics {
		b = kbin.AppendString(b, r.Topics[i].Topic)
		b = kbin.AppendArrayLen(b, len(parts))
		for j := range parts {
			p := &parts[j]
			b = kbin.AppendInt32(b, p.partition)
			b = kbin.AppendInt16(b, p.code)
			b = kbin.AppendInt64(b, p.hwm)
			b = kbin.AppendInt64(b, p.lso)
			if v >= 5 {
				b = kbin.AppendInt64(b, p.start)
			}
			// Aborted transactions: null under read_uncommitted, as
			// Kafka answers.
			b = kbin.AppendNullableArrayLen(b, len(p.aborted), r.IsolationLevel == 0)
			for _, a := range p.aborted {
				b = kbin.AppendInt64(b, a.ProducerID)
				b = kbin.AppendInt64(b, a.FirstOffset)
			}
			if v >= 11 {
				b = kbin.AppendInt32(b, -1) // no preferred read replica
			}
			b = kbin.AppendInt32(b, int32(p.bytes))
			if len(p.secs) > 0 {
				f.bytes(b)
				for k := range p.secs {
					f.section(&p.secs[k])
				}
				f.secs = append(f.secs, p.secs...)
				b = nil
			}
		}
	}
	f.bytes(b)
	return f
}
