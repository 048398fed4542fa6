package connectors

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samsa-io/samsa/log/replog"
	"github.com/stretchr/testify/require"
)

// play is a JSON line of the tests.
type play struct {
	User string `json:"user"`
	N    int    `json:"n"`
}

// writePlays writes files of JSON lines, users u0..u(users-1) taking turns,
// and returns every line and each line's position.
func writePlays(t *testing.T, dir string, files, perFile, users int) (lines []string, pos map[string]filePos) {
	t.Helper()
	pos = map[string]filePos{}
	n := 0
	for f := range files {
		var sb strings.Builder
		for range perFile {
			b, err := json.Marshal(play{User: fmt.Sprintf("u%d", n%users), N: n})
			require.NoError(t, err)
			sb.Write(b)
			sb.WriteByte('\n')
			lines = append(lines, string(b))
			pos[string(b)] = filePos{Ordinal: uint64(f + 1), Offset: int64(sb.Len())}
			n++
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("plays-%02d.jsonl", f)), []byte(sb.String()), 0o644))
	}
	return lines, pos
}

// Every line of several files arrives once, keyed partitions hold each
// user's lines in order, and each partition remembers the source's last
// position there.
func TestFileToTopicKeyed(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	dir := t.TempDir()
	lines, pos := writePlays(t, dir, 3, 500, 10)
	st := startStream(t, env(t, n.log), fmt.Sprintf(`
input:
  samsa_file:
    paths: [%q]
    format: jsonl
    source_id: plays-files
    tail: false
    batch_size: 64
output:
  samsa_topic:
    topic: plays
    key: '${! json("user") }'
    partitions: 4
`, filepath.Join(dir, "*.jsonl")))
	st.wait(t, time.Minute)

	got := topicValues(t, n.log, "plays")
	require.ElementsMatch(t, lines, got)
	for p := range int32(4) {
		tp := replog.TopicPartition{Topic: "plays", Partition: p}
		recs := readPartition(t, n.log, tp)
		stored, _, ok, err := n.log.SourcePosition(tp, "plays-files")
		require.NoError(t, err)
		if len(recs) == 0 {
			require.False(t, ok, "no record, no position")
			continue
		}
		last := map[string]int{}
		for _, r := range recs {
			var pl play
			require.NoError(t, json.Unmarshal([]byte(r.Value), &pl))
			require.Equal(t, pl.User, string(r.Key))
			require.Equal(t, p, keyPartition(r.Key, 4), "record of %s on partition %d", pl.User, p)
			if prev, ok := last[pl.User]; ok {
				require.Greater(t, pl.N, prev, "order of %s", pl.User)
			}
			last[pl.User] = pl.N
			require.Empty(t, r.Headers, "samsa_* metadata is not written as headers")
		}
		require.True(t, ok)
		require.Equal(t, pos[recs[len(recs)-1].Value].appendTo(nil), stored)
	}

	b, ok := n.log.Checkpoint("source/plays-files")
	require.True(t, ok)
	ck, err := decodeFileCheckpoint(b)
	require.NoError(t, err)
	require.Equal(t, pos[lines[len(lines)-1]], ck.Acked)
	require.Len(t, ck.Files, 3)
	require.Equal(t, uint64(4), ck.Next)
	for i, f := range ck.Files {
		require.Equal(t, uint64(i+1), f.Ordinal)
		require.Equal(t, filepath.Join(dir, fmt.Sprintf("plays-%02d.jsonl", i)), f.Path)
		require.NotZero(t, f.Inode)
		require.Equal(t, fingerprintLen, f.FPLen)
	}
}

// Lines appended after the start arrive; a partial line waits for its
// newline; a new file is picked up after the current one.
func TestFileTail(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	dir := t.TempDir()
	first := filepath.Join(dir, "a.log")
	writeLines(t, first, "a", 0, 10)
	startStream(t, env(t, n.log), fmt.Sprintf(`
input:
  samsa_file:
    paths: [%q]
    source_id: tail
    poll_interval: 50ms
output:
  samsa_topic:
    topic: logs
`, filepath.Join(dir, "*.log")))
	waitValues := func(want []string) { t.Helper(); waitValues(t, n.log, "logs", want) }
	var want []string
	for i := range 10 {
		want = append(want, fmt.Sprintf("a-%d", i))
	}
	waitValues(want)

	writeLines(t, first, "a", 10, 20)
	for i := 10; i < 20; i++ {
		want = append(want, fmt.Sprintf("a-%d", i))
	}
	waitValues(want)

	appendFile(t, first, "partial")
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, want, topicValues(t, n.log, "logs"), "a partial line is held")
	appendFile(t, first, "-line\r\n")
	want = append(want, "partial-line")
	waitValues(want)

	// A newer file: the first is finished once it has been idle for a
	// poll, its unterminated last line included.
	appendFile(t, first, "last-of-a")
	writeLines(t, filepath.Join(dir, "b.log"), "b", 0, 5)
	want = append(want, "last-of-a")
	for i := range 5 {
		want = append(want, fmt.Sprintf("b-%d", i))
	}
	waitValues(want)
	writeLines(t, filepath.Join(dir, "b.log"), "b", 5, 8)
	for i := 5; i < 8; i++ {
		want = append(want, fmt.Sprintf("b-%d", i))
	}
	waitValues(want)
}

// jsonl passes invalid lines raw and skips blank ones; csv makes rows into
// JSON objects keyed by each file's header.
func TestFileFormats(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.jsonl"), []byte(
		"{\"a\":1}\n\n  \n{not json}\r\n{\"b\":[1,2]}\n[3]"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.csv"), []byte(
		"\xef\xbb\xbfid,name,note\r\n"+
			"1,Ann,plain\r\n"+
			"2,\"Bob, Jr.\",\"said \"\"hi\"\"\"\n"+
			"\n"+
			"3,Cy,\"two\nlines\"\n"+
			"4,too,many,fields\n"+
			"5,Dee,\"tab\tand \\ back\"\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.csv"), []byte("x,y\n7,8\n"), 0o644))

	e := env(t, n.log)
	startStream(t, e, fmt.Sprintf(`
input:
  samsa_file:
    paths: [%q]
    format: jsonl
    source_id: j
    tail: false
output:
  samsa_topic: {topic: j}
`, filepath.Join(dir, "*.jsonl"))).wait(t, time.Minute)
	require.Equal(t, []string{`{"a":1}`, `{not json}`, `{"b":[1,2]}`, `[3]`}, topicValues(t, n.log, "j"))

	startStream(t, e, fmt.Sprintf(`
input:
  samsa_file:
    paths: [%q]
    format: csv
    source_id: c
    tail: false
output:
  samsa_topic: {topic: c}
`, filepath.Join(dir, "*.csv"))).wait(t, time.Minute)
	got := topicValues(t, n.log, "c")
	require.Equal(t, []string{
		`{"id":"1","name":"Ann","note":"plain"}`,
		`{"id":"2","name":"Bob, Jr.","note":"said \"hi\""}`,
		`{"id":"3","name":"Cy","note":"two\nlines"}`,
		`4,too,many,fields`,
		`{"id":"5","name":"Dee","note":"tab\tand \\ back"}`,
		`{"x":"7","y":"8"}`,
	}, got)
	for _, v := range got {
		if v[0] == '{' {
			require.True(t, json.Valid([]byte(v)), v)
		}
	}
}

// A CSV file resumed past its header still knows the header.
func TestFileCSVResumeKeepsHeader(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "rows.csv")
	appendFile(t, path, "k,v\n1,a\n2,b\n")
	e := env(t, n.log)
	conf := fmt.Sprintf(`
input:
  samsa_file:
    paths: [%q]
    format: csv
    source_id: rows
    tail: false
output:
  samsa_topic: {topic: rows}
`, path)
	startStream(t, e, conf).wait(t, time.Minute)
	appendFile(t, path, "3,c\n")
	startStream(t, e, conf).wait(t, time.Minute)
	require.Equal(t, []string{`{"k":"1","v":"a"}`, `{"k":"2","v":"b"}`, `{"k":"3","v":"c"}`}, topicValues(t, n.log, "rows"))
}

// A file truncated in place is read again from its start; a file renamed
// away and replaced, or deleted and created again, is finished, then the
// new one read.
func TestFileTruncateAndRename(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeLines(t, path, "one", 0, 5)
	startStream(t, env(t, n.log), fmt.Sprintf(`
input:
  samsa_file:
    paths: [%q]
    source_id: app
    poll_interval: 50ms
output:
  samsa_topic: {topic: app}
`, path))
	var want []string
	add := func(prefix string, from, to int) {
		for i := from; i < to; i++ {
			want = append(want, fmt.Sprintf("%s-%d", prefix, i))
		}
	}
	waitValues := func() { t.Helper(); waitValues(t, n.log, "app", want) }
	add("one", 0, 5)
	waitValues()

	require.NoError(t, os.Truncate(path, 0)) // copy-truncate
	writeLines(t, path, "two", 0, 3)
	add("two", 0, 3)
	waitValues()

	writeLines(t, path, "two", 3, 4)
	require.NoError(t, os.Rename(path, filepath.Join(dir, "app.log.1"))) // rename and create
	writeLines(t, filepath.Join(dir, "app.log.1"), "two", 4, 6)          // the writer still has it open
	writeLines(t, path, "three", 0, 4)
	add("two", 3, 6)
	add("three", 0, 4)
	waitValues()

	// Deleted while read, then created again.
	writeLines(t, path, "three", 4, 5)
	require.NoError(t, os.Remove(path))
	writeLines(t, path, "four", 0, 3)
	add("three", 4, 5)
	add("four", 0, 3)
	waitValues()
}

// A restart whose checkpointed file is gone reads only newer files, never
// the finished ones again.
func TestFileResumePastGoneFile(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	writeLines(t, a, "a", 0, 5)
	writeLines(t, b, "b", 0, 5)
	conf := fmt.Sprintf(`
input:
  samsa_file:
    paths: [%q]
    source_id: gone
    poll_interval: 50ms
    checkpoint_interval: 20ms
output:
  samsa_topic: {topic: gone}
`, filepath.Join(dir, "*.log"))
	e := env(t, n.log)
	st := startStream(t, e, conf)
	var want []string
	for _, p := range []string{"a", "b"} {
		for i := range 5 {
			want = append(want, fmt.Sprintf("%s-%d", p, i))
		}
	}
	waitValues(t, n.log, "gone", want)
	st.stop(t, 10*time.Second)
	ck := func() fileCheckpoint {
		raw, ok := n.log.Checkpoint("source/gone")
		require.True(t, ok)
		c, err := decodeFileCheckpoint(raw)
		require.NoError(t, err)
		return c
	}
	done := ck().Acked
	require.Equal(t, uint64(2), done.Ordinal)

	require.NoError(t, os.Remove(b))
	startStream(t, e, conf)
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, done, ck().Acked, "a is not read again")
	writeLines(t, filepath.Join(dir, "c.log"), "c", 0, 3)
	for i := range 3 {
		want = append(want, fmt.Sprintf("c-%d", i))
	}
	waitValues(t, n.log, "gone", want)
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if got := ck().Acked; got.Ordinal != 3 {
			return fmt.Errorf("acked %v", got)
		}
		return nil
	})
}
