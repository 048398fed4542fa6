package replica

import (
	"errors"
	"fmt"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/samsa-io/samsa/log/partition"
	"github.com/samsa-io/samsa/log/segment"
)

// A partition's answer travels back to the proposer in dragonboat's
// Result: Value is the base offset; Data is empty for a stored batch, else
// one code byte and the refusal's message.
var resultCodes = []error{
	1: nil, // duplicate
	2: partition.ErrCorrupt,
	3: partition.ErrInvalidRecord,
	4: partition.ErrOutOfOrderSequence,
	5: partition.ErrInvalidProducerEpoch,
	6: partition.ErrSourceOverlap,
	7: partition.ErrTooLarge,
	8: partition.ErrBadEntry,
	9: segment.ErrOffsetOutOfRange,
}

const codeDuplicate, codeUnknown = 1, 255

func encodeResult(r partition.Result) sm.Result {
	out := sm.Result{Value: uint64(max(r.BaseOffset, 0))}
	switch {
	case r.Err != nil:
		code := byte(codeUnknown)
		for c, sentinel := range resultCodes {
			if sentinel != nil && errors.Is(r.Err, sentinel) {
				code = byte(c)
				break
			}
		}
		out.Data = append([]byte{code}, r.Err.Error()...)
	case r.Duplicate:
		out.Data = []byte{codeDuplicate}
	}
	return out
}

func decodeResult(r sm.Result) (partition.Result, error) {
	res := partition.Result{BaseOffset: int64(r.Value), LogAppendTime: -1}
	if len(r.Data) == 0 {
		return res, nil
	}
	code, msg := int(r.Data[0]), string(r.Data[1:])
	switch {
	case code == codeDuplicate:
		res.Duplicate = true
	case code < len(resultCodes) && resultCodes[code] != nil:
		res.Err = fmt.Errorf("%w (%s)", resultCodes[code], msg)
	default:
		res.Err = errors.New(msg)
	}
	return res, nil
}
