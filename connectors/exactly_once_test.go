package connectors

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/samsa-io/samsa/log/replog"
	"github.com/stretchr/testify/require"
)

// TestFileExactlyOnceAcrossRestarts interrupts a file → topic stream at
// several points, by stopping it at once and by closing the node under it
// (so that even its last checkpoint is lost), and restarts it on the same
// data: every line is in the topic exactly once, each user's in order.
func TestFileExactlyOnceAcrossRestarts(t *testing.T) {
	for _, c := range []struct {
		name       string
		key        string
		checkpoint string
		stops      []string
	}{
		{"keyed", `key: '${! json("user") }'`, "100ms", []string{"stop", "crash", "stop", "crash"}},
		// The checkpoint is stored only when the stream starts, and the
		// crashes lose the one of Close: every restart re-reads from the
		// beginning and the output drops what the partitions have.
		{"keyed, checkpoint far behind", `key: '${! json("user") }'`, "1h", []string{"crash", "crash", "crash", "crash"}},
		{"unkeyed", "", "100ms", []string{"stop", "crash", "stop", "crash"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newNode(t)
			dir := t.TempDir()
			lines, _ := writePlays(t, dir, 3, 4000, 13)
			conf := fmt.Sprintf(`
input:
  samsa_file:
    paths: [%q]
    format: jsonl
    source_id: eo
    tail: false
    batch_size: 100
    checkpoint_interval: %s
output:
  samsa_topic:
    topic: eo
    partitions: 3
    %s
`, filepath.Join(dir, "*.jsonl"), c.checkpoint, c.key)

			for i, stop := range c.stops {
				target := (i + 1) * len(lines) / 5
				st := startStream(t, env(t, n.log), conf)
				checkFor(t, time.Minute, time.Millisecond, func() error {
					if got := countTopic(t, n.log, "eo"); got < target {
						return fmt.Errorf("%d records, waiting for %d", got, target)
					}
					return nil
				})
				switch stop {
				case "stop":
					st.stop(t, time.Millisecond)
				case "crash":
					n.close(t)
					st.stop(t, time.Second)
					n.open(t)
				}
			}
			startStream(t, env(t, n.log), conf).wait(t, 2*time.Minute)
			checkExactlyOnce(t, n.log, "eo", 3, lines, c.key != "")
		})
	}
}

// checkExactlyOnce checks that a topic holds every line once and, when
// keyed, each user's lines in order within their partition.
func checkExactlyOnce(t *testing.T, l *replog.Log, topic string, partitions int32, lines []string, keyed bool) {
	t.Helper()
	seen := map[string]int{}
	for p := range partitions {
		last := map[string]int{}
		for _, r := range readPartition(t, l, replog.TopicPartition{Topic: topic, Partition: p}) {
			seen[r.Value]++
			var pl play
			require.NoError(t, json.Unmarshal([]byte(r.Value), &pl))
			if keyed {
				if prev, ok := last[pl.User]; ok {
					require.Greater(t, pl.N, prev, "order of %s in partition %d", pl.User, p)
				}
				last[pl.User] = pl.N
			}
		}
	}
	var missing, dup int
	for _, line := range lines {
		switch seen[line] {
		case 0:
			missing++
		case 1:
		default:
			dup++
		}
	}
	require.Equal(t, len(lines), len(seen), "distinct records")
	require.Zero(t, missing, "missing lines")
	require.Zero(t, dup, "duplicated lines")
}
