package batch

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzMax keeps each fuzz iteration cheap.
const fuzzMax = 1 << 20

// FuzzDecode feeds arbitrary bytes to Validate, ValidateRecords and the
// Iterator. Random bytes almost never carry a matching CRC, so each input
// is also run a second time with its length and CRC repaired: that lets
// the fuzzer reach the decompressors and the record decoder.
func FuzzDecode(f *testing.F) {
	small := []Record{
		{Timestamp: 10, Key: []byte("k"), Value: []byte("v")},
		{Timestamp: 5, Value: nil, Headers: []RecordHeader{{Key: []byte("h"), Value: []byte("x")}, {Key: []byte("n")}}},
		{Timestamp: 20, Key: []byte{}, Value: bytes.Repeat([]byte("ab"), 40)},
	}
	for _, c := range codecs {
		var b Builder
		b.SetCodec(c)
		for _, r := range small {
			b.Add(r)
		}
		valid, err := b.Build(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(valid)
		f.Add(append(bytes.Clone(valid), valid[:HeaderLen+3]...)) // partial trailing batch
	}
	valid := buildBatch(f, CodecNone, small)
	f.Add(valid[:HeaderLen])
	f.Add(append(bytes.Clone(valid), 0, 0, 0))
	f.Add(rawBatch(CodecNone, 4, 10, valid[HeaderLen:]))
	f.Add(rawBatch(CodecSnappy, 3, 10, xerialFrame(valid[HeaderLen:])))
	f.Add(rawBatch(CodecGzip, 1, 0, []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}))
	flipped := bytes.Clone(valid)
	flipped[offCRC] ^= 1
	f.Add(flipped)

	var it Iterator
	it.MaxDecompressed = fuzzMax
	f.Fuzz(func(t *testing.T, in []byte) {
		checkDecode(t, &it, in)
		if len(in) >= HeaderLen {
			checkDecode(t, &it, fixup(bytes.Clone(in)))
		}
	})
}

// checkDecode runs every decoder on in and checks that they agree.
func checkDecode(t *testing.T, it *Iterator, in []byte) {
	h, verr := Validate(in)
	rh, rerr := ValidateRecords(in, fuzzMax)
	if verr != nil && rerr == nil {
		t.Fatalf("ValidateRecords accepted what Validate rejected: %v", verr)
	}
	for _, err := range []error{verr, rerr} {
		if err != nil && !isSentinel(err) {
			t.Fatalf("error without a sentinel: %v", err)
		}
	}

	it.Reset(in)
	var n int32
	for it.Next() {
		r := it.Record()
		if rerr == nil && r.Offset != rh.BaseOffset+int64(n) {
			t.Fatalf("record %d has offset %d, base %d", n, r.Offset, rh.BaseOffset)
		}
		n++
	}
	if err := it.Err(); err != nil && !isSentinel(err) {
		t.Fatalf("iterator error without a sentinel: %v", err)
	}
	if rerr == nil {
		if it.Err() != nil {
			t.Fatalf("iterator failed on a batch ValidateRecords accepted: %v", it.Err())
		}
		if n != rh.RecordCount || rh != h {
			t.Fatalf("iterated %d records, batch says %d", n, rh.RecordCount)
		}
	}
}

func isSentinel(err error) bool {
	for _, s := range []error{ErrCorrupt, ErrCRC, ErrMagic, ErrCodec, ErrTooLarge} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
