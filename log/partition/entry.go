package partition

import (
	"encoding/binary"
	"fmt"
)

// Kind is what an entry asks the partition to do.
type Kind uint8

// Entry kinds.
const (
	KindBatch         Kind = 1 // store a producer's or a source's batch
	KindDeleteRecords Kind = 2 // move the log start offset (retention, DeleteRecords)
	KindTxnMarker     Kind = 3 // end a producer's transaction: the partition writes its control batch
)

const entryVersion = 1

// Limits on what an entry carries besides its batch.
const (
	MaxSourceIDLen  = 255
	MaxPositionLen  = 1024
	flagLogAppendTs = 1 << 0
	flagCommit      = 1 << 0 // of a marker entry
	markerEntryLen  = 8 + 4 + 8 + 2 + 1 + 4
)

// Meta is what the leader proposes along with a batch: everything the apply
// decision depends on besides the batch itself.
type Meta struct {
	Kind Kind
	// AppendTime is the leader's clock, in ms, when it proposed the entry:
	// the batch's timestamp under LogAppendTime, and "now" for producer
	// expiry.
	AppendTime int64
	// LeaderEpoch is written into the batch's partitionLeaderEpoch.
	LeaderEpoch int32
	// LogAppendTime is the topic's message.timestamp.type at proposal.
	LogAppendTime bool
	// Source identifies a pipeline source, empty for Kafka producers.
	// SourceFirst and SourceLast are the source positions of the batch's
	// first and last records, compared as byte strings: a source encodes
	// them so that later positions sort later (DESIGN invariant 4).
	Source      string
	SourceFirst []byte
	SourceLast  []byte
	// DeleteBefore is the new log start offset of a KindDeleteRecords entry.
	DeleteBefore int64
	// Marker is what a KindTxnMarker entry ends; AppendTime and
	// LeaderEpoch apply to its control batch as to a producer's batch.
	Marker Marker
}

// Marker is a transaction marker: the end of producer ProducerID's
// transaction in this partition, committed or aborted by the transaction
// coordinator at CoordinatorEpoch.
type Marker struct {
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool
	CoordinatorEpoch int32
}

// AppendEntry appends the encoding of m and its batch (nil for
// KindDeleteRecords and KindTxnMarker) to dst.
func AppendEntry(dst []byte, m *Meta, batch []byte) []byte {
	dst = append(dst, entryVersion, byte(m.Kind))
	if m.Kind == KindDeleteRecords {
		return binary.BigEndian.AppendUint64(dst, uint64(m.DeleteBefore))
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(m.AppendTime))
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.LeaderEpoch))
	if m.Kind == KindTxnMarker {
		dst = binary.BigEndian.AppendUint64(dst, uint64(m.Marker.ProducerID))
		dst = binary.BigEndian.AppendUint16(dst, uint16(m.Marker.ProducerEpoch))
		var flags byte
		if m.Marker.Commit {
			flags |= flagCommit
		}
		dst = append(dst, flags)
		return binary.BigEndian.AppendUint32(dst, uint32(m.Marker.CoordinatorEpoch))
	}
	var flags byte
	if m.LogAppendTime {
		flags |= flagLogAppendTs
	}
	dst = append(dst, flags)
	dst = appendShortBytes(dst, []byte(m.Source))
	dst = appendShortBytes(dst, m.SourceFirst)
	dst = appendShortBytes(dst, m.SourceLast)
	return append(dst, batch...)
}

func appendShortBytes(dst, b []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}

// DecodeEntry splits an entry into its metadata and batch. The batch and
// the position slices alias b; the batch is not validated here.
func DecodeEntry(b []byte) (Meta, []byte, error) {
	var m Meta
	if len(b) < 2 || b[0] != entryVersion {
		return m, nil, fmt.Errorf("%w: %d bytes, version byte %v", ErrBadEntry, len(b), b[:min(len(b), 1)])
	}
	m.Kind = Kind(b[1])
	b = b[2:]
	switch m.Kind {
	case KindDeleteRecords:
		if len(b) != 8 {
			return m, nil, fmt.Errorf("%w: delete-records entry of %d bytes", ErrBadEntry, len(b))
		}
		m.DeleteBefore = int64(binary.BigEndian.Uint64(b))
		return m, nil, nil
	case KindTxnMarker:
		if len(b) != markerEntryLen {
			return m, nil, fmt.Errorf("%w: marker entry of %d bytes", ErrBadEntry, len(b))
		}
		be := binary.BigEndian
		m.AppendTime = int64(be.Uint64(b))
		m.LeaderEpoch = int32(be.Uint32(b[8:]))
		m.Marker = Marker{
			ProducerID:       int64(be.Uint64(b[12:])),
			ProducerEpoch:    int16(be.Uint16(b[20:])),
			Commit:           b[22]&flagCommit != 0,
			CoordinatorEpoch: int32(be.Uint32(b[23:])),
		}
		return m, nil, nil
	case KindBatch:
	default:
		return m, nil, fmt.Errorf("%w: kind %d", ErrBadEntry, m.Kind)
	}
	if len(b) < 13 {
		return m, nil, fmt.Errorf("%w: batch entry header cut short", ErrBadEntry)
	}
	m.AppendTime = int64(binary.BigEndian.Uint64(b))
	m.LeaderEpoch = int32(binary.BigEndian.Uint32(b[8:]))
	m.LogAppendTime = b[12]&flagLogAppendTs != 0
	b = b[13:]
	var src []byte
	var err error
	if src, b, err = shortBytes(b, MaxSourceIDLen, "source id"); err != nil {
		return m, nil, err
	}
	m.Source = string(src)
	if m.SourceFirst, b, err = shortBytes(b, MaxPositionLen, "first position"); err != nil {
		return m, nil, err
	}
	if m.SourceLast, b, err = shortBytes(b, MaxPositionLen, "last position"); err != nil {
		return m, nil, err
	}
	return m, b, nil
}

func shortBytes(b []byte, limit int, what string) (field, rest []byte, err error) {
	if len(b) < 2 {
		return nil, nil, fmt.Errorf("%w: %s length cut short", ErrBadEntry, what)
	}
	n := int(binary.BigEndian.Uint16(b))
	if n > limit || len(b) < 2+n {
		return nil, nil, fmt.Errorf("%w: %s of %d bytes (limit %d, %d left)", ErrBadEntry, what, n, limit, len(b)-2)
	}
	if n == 0 {
		return nil, b[2:], nil
	}
	return b[2 : 2+n], b[2+n:], nil
}
