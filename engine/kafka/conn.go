package kafka

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/samsa-io/samsa/log/segment"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// conn is one client connection: a reader that decodes requests and
// starts their handlers, and a writer that sends the responses in request
// order.
type conn struct {
	s      *Server
	nc     net.Conn
	remote string
	logger *slog.Logger

	ctx    context.Context // ends when the connection is cut
	cancel context.CancelFunc
	queue  chan *inflight         // requests in order, bounded: the read-ahead
	client atomic.Pointer[string] // client id of the latest request

	stopOnce sync.Once
}

// inflight is a request being handled.
type inflight struct {
	h     header
	start time.Time
	done  chan struct{} // closed when reply or err is set
	reply reply
	err   error // the handler failed: close the connection
}

// reply is what goes back for a request.
type reply struct {
	msg   kmsg.Response // encoded by the writer, or
	fetch *fetchReply   // written as pieces with sendfile, or
	none  bool          // nothing at all (Produce with acks=0)
}

// fetchReply is a response body made of encoded pieces and file sections.
type fetchReply struct {
	pieces []piece
	size   int
	secs   []segment.Section // released once written
}

type piece struct {
	b   []byte
	sec *segment.Section
}

func (f *fetchReply) bytes(b []byte) {
	f.pieces = append(f.pieces, piece{b: b})
	f.size += len(b)
}

func (f *fetchReply) section(s *segment.Section) {
	f.pieces = append(f.pieces, piece{sec: s})
	f.size += int(s.Len)
}

func newConn(s *Server, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	remote := nc.RemoteAddr().String()
	return &conn{
		s: s, nc: nc, remote: remote, ctx: ctx, cancel: cancel,
		logger: s.logger.With("remote", remote),
		queue:  make(chan *inflight, s.cfg.MaxInFlight),
	}
}

// serve runs the connection until it ends.
func (c *conn) serve() {
	c.s.metrics.connections.Inc()
	defer c.s.metrics.connections.Dec()
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); c.writeLoop() }()
	c.readLoop()
	close(c.queue)
	<-writerDone
	c.cancel()
	c.nc.Close()
}

// stopReading makes the reader stop at its next read: graceful shutdown.
func (c *conn) stopReading() {
	c.stopOnce.Do(func() { c.nc.SetReadDeadline(time.Now()) })
}

// abort cuts the connection now.
func (c *conn) abort() {
	c.cancel()
	c.nc.Close()
}

func (c *conn) readLoop() {
	br := bufio.NewReaderSize(c.nc, 64<<10)
	for {
		frame, err := readFrame(br, c.s.cfg.MaxRequestBytes)
		if err != nil {
			c.readFailed(err)
			return
		}
		c.s.metrics.bytesIn.Add(float64(len(frame) + 4))
		h, req, body, err := parseHeader(frame, c.s.apis)
		if err == nil && req != nil {
			if u, ok := req.(kmsg.UnsafeReadFrom); ok && h.key == 0 {
				err = u.UnsafeReadFrom(body) // records stay in the frame: no copy
			} else {
				err = req.ReadFrom(body)
			}
			if err != nil {
				err = errors.Join(errMalformed, err)
			}
		}
		if err != nil {
			c.protocolError(h, err)
			return
		}
		if cur := c.client.Load(); cur == nil || *cur != h.clientID {
			id := h.clientID
			c.client.Store(&id)
		}
		p := &inflight{h: h, start: time.Now(), done: make(chan struct{})}
		select {
		case c.queue <- p:
		case <-c.ctx.Done():
			return
		}
		c.dispatch(p, req)
	}
}

// dispatch starts a request's handler.
func (c *conn) dispatch(p *inflight, req kmsg.Request) {
	if req == nil { // ApiVersions at a version we do not know
		p.reply = reply{msg: c.s.apiVersionsUnsupported(p.h)}
		close(p.done)
		return
	}
	a := c.s.apis[p.h.key]
	if a.start != nil {
		finish := a.start(c.ctx, c, req)
		go func() {
			p.reply, p.err = finish()
			close(p.done)
		}()
		return
	}
	go func() {
		resp, err := a.handle(c.ctx, c, req)
		p.reply, p.err = reply{msg: resp}, err
		close(p.done)
	}()
}

func (c *conn) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET),
		errors.As(err, &ne) && ne.Timeout():
		return // the client left, or shutdown stopped the read
	}
	c.protocolError(header{key: -1}, err)
}

// protocolError ends a connection whose peer broke the protocol: a log
// line and a metric; the node and every other connection carry on.
func (c *conn) protocolError(h header, err error) {
	reason := "malformed"
	switch {
	case errors.Is(err, errFrameTooLarge):
		reason = "too_large"
	case errors.Is(err, errUnknownAPI):
		reason = "unknown_api"
	case errors.Is(err, errVersion):
		reason = "unsupported_version"
	}
	c.s.metrics.badRequests.WithLabelValues(reason).Inc()
	c.logger.Warn("closing connection: bad request", "reason", reason, "api_key", h.key, "client_id", h.clientID, "err", err)
}

// writeLoop sends responses in request order.
func (c *conn) writeLoop() {
	var buf []byte
	broken := false
	for p := range c.queue {
		select {
		case <-p.done:
		case <-c.ctx.Done():
			<-p.done
		}
		if broken {
			p.reply.release()
			continue
		}
		if p.err != nil {
			c.logger.Error("closing connection: request failed", "api", kmsg.NameForKey(p.h.key), "err", p.err)
			broken = true
			c.abortAsync()
			continue
		}
		var n int
		var err error
		switch {
		case p.reply.none:
		case p.reply.fetch != nil:
			n, err = c.writeFetch(p.h, p.reply.fetch)
		default:
			buf = appendResponse(buf[:0], p.h, p.reply.msg)
			n, err = c.nc.Write(buf)
			c.s.metrics.countErrors(p.h.key, p.reply.msg)
		}
		p.reply.release()
		c.s.metrics.observe(p.h.key, time.Since(p.start), n)
		if err != nil {
			broken = true
			c.abortAsync()
		}
	}
}

// abortAsync cuts the connection so that the reader stops too.
func (c *conn) abortAsync() {
	c.cancel()
	c.nc.Close()
}

// writeFetch writes a Fetch response: the header and encoded pieces as
// they are, the records by sendfile straight from the segment files.
func (c *conn) writeFetch(h header, f *fetchReply) (int, error) {
	head := make([]byte, 8)
	binary.BigEndian.PutUint32(head, uint32(4+f.size))
	binary.BigEndian.PutUint32(head[4:], uint32(h.corr))
	bufs := net.Buffers{head}
	total := 0
	flush := func() error {
		if len(bufs) == 0 {
			return nil
		}
		n, err := bufs.WriteTo(c.nc)
		total += int(n)
		bufs = bufs[:0]
		return err
	}
	for i := range f.pieces {
		pc := &f.pieces[i]
		if pc.sec == nil {
			bufs = append(bufs, pc.b)
			continue
		}
		if err := flush(); err != nil {
			return total, err
		}
		n, err := pc.sec.WriteTo(c.nc)
		total += int(n)
		if err != nil {
			return total, err
		}
	}
	return total, flush()
}

func (r *reply) release() {
	if r.fetch != nil {
		segment.Release(r.fetch.secs)
		r.fetch.secs = nil
	}
}

// clientID is the client id the connection's requests carry (clients use
// one per connection).
func (c *conn) clientID() string {
	if id := c.client.Load(); id != nil {
		return *id
	}
	return ""
}

// clientHost is the client's address without the port, for DescribeGroups.
func (c *conn) clientHost() string {
	if host, _, err := net.SplitHostPort(c.remote); err == nil {
		return "/" + host
	}
	return c.remote
}
