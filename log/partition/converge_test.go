package partition

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// randomEntries is a history a leader could propose: producers that retry,
// skip sequences and bump epochs, sources that re-send, LogAppendTime
// topics, deletions, transactions and their markers (some fenced), and
// the odd corrupt batch.
func randomEntries(t *testing.T, r *rand.Rand, n int) [][]byte {
	var out [][]byte
	seq := map[int64]int32{}
	epoch := map[int64]int16{}
	var srcPos uint16
	var prev []byte
	end := int64(0) // rough: only bounds deletions
	for i := 0; i < n; i++ {
		m := Meta{Kind: KindBatch, AppendTime: int64(1000 + i*10), LeaderEpoch: int32(i / 50), LogAppendTime: r.IntN(5) == 0}
		var b []byte
		switch k := r.IntN(100); {
		case k < 8 && prev != nil: // a retry of the previous entry
			out = append(out, prev)
			continue
		case k < 12:
			out = append(out, entry(Meta{Kind: KindDeleteRecords, DeleteBefore: r.Int64N(end/2 + 1)}, nil))
			continue
		case k < 14:
			b = producerBatch(t, -1, -1, -1, 2)
			b[len(b)-1] ^= 0xff // corrupt: refused everywhere alike
		case k < 30: // a source, sometimes re-sending
			if r.IntN(4) > 0 {
				srcPos += 3
			}
			m.Source = "file:x"
			m.SourceFirst = []byte{byte(srcPos >> 8), byte(srcPos), 0}
			m.SourceLast = []byte{byte(srcPos >> 8), byte(srcPos), 2}
			b = producerBatch(t, -1, -1, -1, 3)
		case k < 90: // idempotent producers
			pid := int64(r.IntN(4))
			if r.IntN(30) == 0 {
				epoch[pid]++
				seq[pid] = 0
			}
			if r.IntN(25) == 0 {
				seq[pid] += 2 // a gap
			}
			n := 1 + r.IntN(4)
			b = producerBatch(t, pid, epoch[pid], seq[pid], n)
			seq[pid] += int32(n)
		case k < 95: // transactional producers
			pid := int64(10 + r.IntN(2))
			n := 1 + r.IntN(3)
			b = txnBatch(t, pid, epoch[pid], seq[pid], n)
			seq[pid] += int32(n)
		case k < 98: // their markers: commit, abort, fencing abort, stale
			pid := int64(10 + r.IntN(2))
			mk := Marker{ProducerID: pid, ProducerEpoch: epoch[pid], Commit: r.IntN(2) == 0, CoordinatorEpoch: int32(i)}
			switch r.IntN(6) {
			case 0:
				epoch[pid]++
				seq[pid] = 0
				mk.ProducerEpoch, mk.Commit = epoch[pid], false
			case 1:
				mk.ProducerEpoch--
			}
			m.Kind, m.Marker = KindTxnMarker, mk
			end++
			prev = entry(m, nil)
			out = append(out, prev)
			continue
		default:
			b = producerBatch(t, -1, -1, -1, 1+r.IntN(5))
		}
		end += 5
		prev = entry(m, b)
		out = append(out, prev)
	}
	return out
}

func TestReplicasConverge(t *testing.T) {
	fenced := 0 // fenced markers, over all seeds
	defer func() { require.Positive(t, fenced) }()
	for seed := range 8 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seed), 99))
			entries := randomEntries(t, r, 600)

			a := open(t, t.TempDir())
			defer a.Close()
			resA := make([]Result, len(entries))
			for i, e := range entries {
				var err error
				resA[i], err = a.Apply(uint64(i+1), e)
				require.NoError(t, err)
			}

			dirB := t.TempDir()
			b := open(t, dirB)
			resB := make([]Result, len(entries))
			for next := 1; next <= len(entries); {
				res, err := b.Apply(uint64(next), entries[next-1])
				require.NoError(t, err)
				resB[next-1] = res
				next++
				switch r.IntN(40) {
				case 0:
					require.NoError(t, b.Sync())
				case 1: // crash: Raft re-delivers from the checkpoint on
					b = open(t, dirB)
					next = int(b.AppliedIndex()) + 1
				case 2:
					require.NoError(t, b.Close())
					b = open(t, dirB)
					next = int(b.AppliedIndex()) + 1
				}
			}
			defer b.Close()

			for i := range entries {
				require.Equal(t, fmt.Sprint(resA[i]), fmt.Sprint(resB[i]), "entry %d", i+1)
			}
			require.Equal(t, a.Log().StartOffset(), b.Log().StartOffset())
			require.True(t, bytes.Equal(stored(t, a), stored(t, b)), "replicas hold byte-identical batches")
			var sa, sb []byte
			sa, _ = a.state.AppendBinary(nil)
			sb, _ = b.state.AppendBinary(nil)
			require.Equal(t, sa, sb, "and the same state")
			// A sanity check that the history exercised the rules.
			dups, refused := 0, 0
			for _, res := range resA {
				if res.Duplicate {
					dups++
				}
				if res.Err != nil {
					refused++
				}
			}
			require.Positive(t, dups)
			require.Positive(t, refused)
			markers := 0
			for i, e := range entries {
				if m, _, err := DecodeEntry(e); err == nil && m.Kind == KindTxnMarker {
					if resA[i].Err == nil {
						markers++
					} else if errors.Is(resA[i].Err, ErrInvalidProducerEpoch) {
						fenced++
					}
				}
			}
			require.Positive(t, markers)
		})
	}
}
