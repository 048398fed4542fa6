package meta

import (
	"encoding/binary"
	"fmt"
)

// Result is the answer to one applied command. A refused command has a
// Code other than CodeOK and changed nothing.
//
// What Value, Version and Items hold depends on the command:
//
//	command              Value                          Version             Items
//	CreateTopic          first shard id (consecutive)   -                   -
//	CreatePartitions     first new shard id             -                   -
//	AllocateProducerIDs  first producer id of the block -                   -
//	PutPipeline          -                              pipeline's version  -
//	RegisterSchema       schema's global id             subject's version   -
//	CommitOffsets        entries committed              -                   one Code per Offsets entry
//	DeleteOffsets        offsets deleted                -                   one Code per Partitions entry
//	DeleteGroup          offsets deleted                -                   -
//
// Per-item refusals do not refuse the command: CommitOffsets with one
// unknown partition commits the others and answers CodeOK at the top, the
// refused entry's code in Items.
type Result struct {
	Code    Code
	Message string // the refusal's text, including the sentinel's; "" when Code is CodeOK
	Value   uint64
	Version uint64
	Items   []Code
}

// Err returns nil for CodeOK, else an error that wraps the code's sentinel
// (errors.Is(r.Err(), ErrTopicExists)) and reads as Message.
func (r Result) Err() error {
	if r.Code == CodeOK {
		return nil
	}
	if r.Code.Err() == nil {
		return fmt.Errorf("%w: unknown code %d: %s", ErrBadResult, uint16(r.Code), r.Message)
	}
	if r.Message == "" {
		return r.Code.Err()
	}
	return &refusal{code: r.Code, msg: r.Message}
}

// ItemErr returns the error of item i of Items, nil if it succeeded or
// there is no such item.
func (r Result) ItemErr(i int) error {
	if i < 0 || i >= len(r.Items) {
		return nil
	}
	return r.Items[i].Err()
}

// refusal is the error Result.Err returns: the message as applied, and the
// sentinel underneath.
type refusal struct {
	code Code
	msg  string
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.code.Err() }

// success returns a successful result carrying value.
func success(value uint64) Result { return Result{Value: value} }

// refuse returns the result of a command refused with err, which must wrap
// one of this package's sentinels.
func refuse(err error) Result { return Result{Code: CodeOf(err), Message: err.Error()} }

const resultFormat = 1

// EncodeResult splits r into the two fields of a dragonboat
// statemachine.Result. Value travels as is; the rest goes in data, nil for
// the common case of a plain success, else:
//
//	format u8 (1), code uvarint, version uvarint,
//	message (uvarint length + bytes), items (uvarint count, then a uvarint code each)
func EncodeResult(r Result) (value uint64, data []byte) {
	if r.Code == CodeOK && r.Message == "" && r.Version == 0 && len(r.Items) == 0 {
		return r.Value, nil
	}
	data = make([]byte, 0, 1+3*binary.MaxVarintLen64+len(r.Message)+len(r.Items))
	data = append(data, resultFormat)
	data = binary.AppendUvarint(data, uint64(r.Code))
	data = binary.AppendUvarint(data, r.Version)
	data = binary.AppendUvarint(data, uint64(len(r.Message)))
	data = append(data, r.Message...)
	data = binary.AppendUvarint(data, uint64(len(r.Items)))
	for _, c := range r.Items {
		data = binary.AppendUvarint(data, uint64(c))
	}
	return r.Value, data
}

// DecodeResult is the inverse of EncodeResult. It refuses codes this
// version does not know and bytes left over.
func DecodeResult(value uint64, data []byte) (Result, error) {
	r := Result{Value: value}
	if len(data) == 0 {
		return r, nil
	}
	if data[0] != resultFormat {
		return Result{}, fmt.Errorf("%w: format %d", ErrBadResult, data[0])
	}
	d := data[1:]
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(d)
		if n <= 0 {
			return 0, false
		}
		d = d[n:]
		return v, true
	}
	code, ok1 := uvarint()
	version, ok2 := uvarint()
	msgLen, ok3 := uvarint()
	if !ok1 || !ok2 || !ok3 || code >= uint64(numCodes) || msgLen > uint64(len(d)) {
		return Result{}, fmt.Errorf("%w: bad header", ErrBadResult)
	}
	r.Code, r.Version, r.Message = Code(code), version, string(d[:msgLen])
	d = d[msgLen:]
	n, ok4 := uvarint()
	if !ok4 || n > uint64(len(d)) { // every item takes at least one byte
		return Result{}, fmt.Errorf("%w: bad item count", ErrBadResult)
	}
	if n > 0 {
		r.Items = make([]Code, n)
	}
	for i := range r.Items {
		c, ok := uvarint()
		if !ok || c >= uint64(numCodes) {
			return Result{}, fmt.Errorf("%w: bad item %d", ErrBadResult, i)
		}
		r.Items[i] = Code(c)
	}
	if len(d) != 0 {
		return Result{}, fmt.Errorf("%w: %d bytes after the result", ErrBadResult, len(d))
	}
	return r, nil
}
