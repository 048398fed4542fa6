package segment

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// loopback returns both ends of a real TCP connection on 127.0.0.1.
func loopback(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server = <-accepted
	require.NotNil(t, server)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestSectionWriteTo(t *testing.T) {
	l := openLog(t, t.TempDir(), Config{SegmentBytes: 1 << 20}, NoCheckpoint)
	defer l.Close()
	for i := 0; i < 400; i++ {
		appendBatch(t, l, spec{records: 10, ts: int64(i), value: 1000})
	}
	require.Greater(t, l.Segments(), 2)
	want := readBytes(t, l, 0, 1<<30)

	t.Run("sendfile to a TCP socket", func(t *testing.T) {
		client, server := loopback(t)
		got := make(chan []byte)
		go func() {
			b, _ := io.ReadAll(client)
			got <- b
		}()
		secs, err := l.Read(0, 1<<30, nil)
		require.NoError(t, err)
		var n int64
		for i := range secs {
			m, err := secs[i].WriteTo(server)
			require.NoError(t, err)
			n += m
		}
		Release(secs)
		require.NoError(t, server.Close())
		require.Equal(t, int64(len(want)), n)
		require.Equal(t, want, <-got)
	})
	t.Run("a section from the middle", func(t *testing.T) {
		client, server := loopback(t)
		secs, err := l.Read(1234, 5000, nil)
		require.NoError(t, err)
		defer Release(secs)
		require.Len(t, secs, 1)
		go func() { secs[0].WriteTo(server); server.Close() }()
		b, err := io.ReadAll(client)
		require.NoError(t, err)
		mid, err := secs[0].AppendTo(nil)
		require.NoError(t, err)
		require.Equal(t, mid, b)
		require.Equal(t, int64(1230), headers(t, b)[0].BaseOffset)
	})
	t.Run("any other writer gets a copy", func(t *testing.T) {
		secs, err := l.Read(0, 1<<30, nil)
		require.NoError(t, err)
		defer Release(secs)
		var buf bytes.Buffer
		for i := range secs {
			_, err := secs[i].WriteTo(&buf)
			require.NoError(t, err)
		}
		require.Equal(t, want, buf.Bytes())
	})
}
