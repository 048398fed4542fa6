package kafka_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawFrame builds a request frame by hand: size, key, version, correlation
// id, client id, body.
func rawFrame(key, version int16, corr int32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 0) // empty client id
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// TestBadInput sends a live node garbage, truncated, oversized and
// unknown requests, each on its own connection, while a well-behaved
// client produces and consumes: every bad connection is closed, the node
// and the good client carry on, and the metrics count each case.
func TestBadInput(t *testing.T) {
	n := startNode(t)
	createTopic(t, n, "good", 1, nil)

	var stop atomic.Bool
	var produced atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pr := client(t, n, kgo.DefaultProduceTopic("good"))
		for !stop.Load() {
			if err := pr.ProduceSync(ctxT(t, 10*time.Second), kgo.StringRecord("ok")).FirstErr(); err != nil {
				t.Errorf("the good client failed: %v", err)
				return
			}
			produced.Add(1)
		}
	}()

	cases := map[string][]byte{
		"garbage":        []byte("GET / HTTP/1.1\r\nHost: samsa\r\n\r\n"),
		"oversized":      binary.BigEndian.AppendUint32(nil, 200<<20),
		"negative size":  binary.BigEndian.AppendUint32(nil, 0xfffffff0),
		"truncated":      append(binary.BigEndian.AppendUint32(nil, 100), 0, 3, 0, 1),
		"unknown api":    rawFrame(9999, 0, 1, nil),
		"bad version":    rawFrame(0, 99, 1, nil),
		"garbled body":   rawFrame(3, 1, 1, []byte{0, 0, 0, 5}), // five topics, none there
		"random bytes 1": {0, 0, 0, 12, 0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 4, 5, 6, 7},
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", n.KafkaAddr())
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Write(frame)
			require.NoError(t, err)
			if name == "truncated" {
				c.(*net.TCPConn).CloseWrite()
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.ReadAll(c)
			require.NoError(t, err, "the server closes the connection rather than hang")
		})
	}

	t.Run("unknown ApiVersions version is answered", func(t *testing.T) {
		c, err := net.Dial("tcp", n.KafkaAddr())
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write(rawFrame(18, 42, 77, nil))
		require.NoError(t, err)
		r := bufio.NewReader(c)
		var size [4]byte
		_, err = io.ReadFull(r, size[:])
		require.NoError(t, err)
		body := make([]byte, binary.BigEndian.Uint32(size[:]))
		_, err = io.ReadFull(r, body)
		require.NoError(t, err)
		require.Equal(t, uint32(77), binary.BigEndian.Uint32(body), "correlation id")
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.SetVersion(0)
		require.NoError(t, resp.ReadFrom(body[4:]))
		require.Equal(t, int16(35), resp.ErrorCode, "UNSUPPORTED_VERSION")
		require.NotEmpty(t, resp.ApiKeys)
		// The connection stays open: a v3 request now works.
		_, err = c.Write(rawFrame(18, 0, 78, nil))
		require.NoError(t, err)
		_, err = io.ReadFull(r, size[:])
		require.NoError(t, err)
	})

	before := produced.Load()
	require.Eventually(t, func() bool { return produced.Load() > before+20 }, 20*time.Second, 10*time.Millisecond, "the good client keeps producing")
	stop.Store(true)
	wg.Wait()

	resp, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, reason := range []string{"malformed", "too_large", "unknown_api", "unsupported_version"} {
		require.Contains(t, string(text), `samsa_kafka_bad_requests_total{reason="`+reason+`"}`)
	}
	require.True(t, strings.Contains(string(text), `samsa_kafka_requests_total{api="Produce"}`))
}
