package partition

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// stateVersion is the version AppendBinary writes. Version 1 (before
// transactions) has no transaction sections and no producer without
// batches; UnmarshalBinary reads both.
const stateVersion = 2

// AppendBinary appends the state's encoding to dst: big-endian, producers,
// sources and open transactions in sorted order, so replicas with the
// same state encode the same bytes.
//
//	version u8, nextOffset i64, logStartOffset i64
//	producers u32, then each: id i64, epoch i16, lastTime i64, lastOffset i64,
//	    batches u8 (0 for a producer known only from a marker), then each:
//	    firstSeq i32, lastSeq i32, baseOffset i64
//	sources u32, then each: id (u16 length + bytes), position (u16 length
//	    + bytes), lastOffset i64
//	version 2 on:
//	open transactions u32, then each: producer id i64, first offset i64
//	aborted transactions u32, in marker order, then each: producer id i64,
//	    first offset i64, last offset i64
func (s *State) AppendBinary(dst []byte) ([]byte, error) {
	be := binary.BigEndian
	dst = append(dst, stateVersion)
	dst = be.AppendUint64(dst, uint64(s.NextOffset))
	dst = be.AppendUint64(dst, uint64(s.LogStartOffset))

	ids := make([]int64, 0, len(s.producers))
	for id := range s.producers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	dst = be.AppendUint32(dst, uint32(len(ids)))
	for _, id := range ids {
		p := s.producers[id]
		dst = be.AppendUint64(dst, uint64(id))
		dst = be.AppendUint16(dst, uint16(p.epoch))
		dst = be.AppendUint64(dst, uint64(p.lastTime))
		dst = be.AppendUint64(dst, uint64(p.lastOffset))
		dst = append(dst, byte(len(p.batches)))
		for _, b := range p.batches {
			dst = be.AppendUint32(dst, uint32(b.firstSeq))
			dst = be.AppendUint32(dst, uint32(b.lastSeq))
			dst = be.AppendUint64(dst, uint64(b.baseOffset))
		}
	}

	names := make([]string, 0, len(s.sources))
	for name := range s.sources {
		names = append(names, name)
	}
	slices.SortFunc(names, strings.Compare)
	dst = be.AppendUint32(dst, uint32(len(names)))
	for _, name := range names {
		src := s.sources[name]
		dst = appendShortBytes(dst, []byte(name))
		dst = appendShortBytes(dst, src.pos)
		dst = be.AppendUint64(dst, uint64(src.lastOffset))
	}

	ids = ids[:0]
	for id := range s.txns {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	dst = be.AppendUint32(dst, uint32(len(ids)))
	for _, id := range ids {
		dst = be.AppendUint64(dst, uint64(id))
		dst = be.AppendUint64(dst, uint64(s.txns[id]))
	}
	dst = be.AppendUint32(dst, uint32(len(s.aborted)))
	for _, a := range s.aborted {
		dst = be.AppendUint64(dst, uint64(a.ProducerID))
		dst = be.AppendUint64(dst, uint64(a.FirstOffset))
		dst = be.AppendUint64(dst, uint64(a.LastOffset))
	}
	return dst, nil
}

// UnmarshalBinary replaces the state by the one encoded in b, keeping
// ExpiryMs. It checks every length against the bytes that remain.
func (s *State) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	version := d.u8()
	if (version < 1 || version > stateVersion) && d.err == nil {
		return fmt.Errorf("%w: state version %d", ErrCheckpoint, version)
	}
	next, start := int64(d.u64()), int64(d.u64())
	producers := map[int64]*producer{}
	for n := d.count(8 + 2 + 8 + 8 + 1); n > 0 && d.err == nil; n-- {
		id := int64(d.u64())
		p := &producer{epoch: int16(d.u16()), lastTime: int64(d.u64()), lastOffset: int64(d.u64())}
		nb := int(d.u8())
		if nb > producerBatches {
			d.fail("producer %d with %d batches", id, nb)
		}
		for ; nb > 0 && d.err == nil; nb-- {
			p.batches = append(p.batches, batchMeta{firstSeq: int32(d.u32()), lastSeq: int32(d.u32()), baseOffset: int64(d.u64())})
		}
		if len(p.batches) == 0 && version < 2 {
			d.fail("producer %d without batches", id)
		}
		producers[id] = p
	}
	sources := map[string]*source{}
	for n := d.count(2 + 2 + 8); n > 0 && d.err == nil; n-- {
		name := string(d.short(MaxSourceIDLen))
		src := &source{pos: append([]byte(nil), d.short(MaxPositionLen)...), lastOffset: int64(d.u64())}
		sources[name] = src
	}
	txns := map[int64]int64{}
	var aborted []AbortedTxn
	if version >= 2 {
		for n := d.count(8 + 8); n > 0 && d.err == nil; n-- {
			id, first := int64(d.u64()), int64(d.u64())
			if _, dup := txns[id]; dup || first < 0 || first >= next {
				d.fail("open transaction of producer %d at %d", id, first)
			}
			txns[id] = first
		}
		for n := d.count(8 + 8 + 8); n > 0 && d.err == nil; n-- {
			a := AbortedTxn{ProducerID: int64(d.u64()), FirstOffset: int64(d.u64()), LastOffset: int64(d.u64())}
			if a.FirstOffset < 0 || a.FirstOffset > a.LastOffset || (len(aborted) > 0 && a.LastOffset <= aborted[len(aborted)-1].LastOffset) {
				d.fail("aborted transaction %+v out of order", a)
			}
			aborted = append(aborted, a)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the state", len(d.b))
	}
	if d.err != nil {
		return d.err
	}
	if next < start || start < 0 {
		return fmt.Errorf("%w: next offset %d below log start %d", ErrCheckpoint, next, start)
	}
	s.NextOffset, s.LogStartOffset, s.producers, s.sources = next, start, producers, sources
	s.txns, s.aborted = txns, aborted
	if s.ExpiryMs == 0 {
		s.ExpiryMs = DefaultProducerExpiryMs
	}
	return nil
}

// decoder reads big-endian fields with a sticky error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCheckpoint, fmt.Sprintf(format, args...))
	}
	d.b = nil
}

func (d *decoder) take(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.fail("state cut short")
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8   { return d.take(1)[0] }
func (d *decoder) u16() uint16 { return binary.BigEndian.Uint16(d.take(2)) }
func (d *decoder) u32() uint32 { return binary.BigEndian.Uint32(d.take(4)) }
func (d *decoder) u64() uint64 { return binary.BigEndian.Uint64(d.take(8)) }

// count reads an element count and checks that the remaining bytes could
// hold that many elements of at least min bytes each, so a corrupt count
// cannot make the decoder loop or allocate without bound.
func (d *decoder) count(min int) int {
	n := int(d.u32())
	if n*min > len(d.b) {
		d.fail("%d elements cannot fit in %d bytes", n, len(d.b))
		return 0
	}
	return n
}

func (d *decoder) short(limit int) []byte {
	n := int(d.u16())
	if n > limit {
		d.fail("field of %d bytes, limit %d", n, limit)
		return nil
	}
	return d.take(n)
}
