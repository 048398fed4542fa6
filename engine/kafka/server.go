package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/samsa-io/samsa/engine/kafka/group"
	"github.com/samsa-io/samsa/log/replog"
)

// Defaults.
const (
	DefaultMaxRequestBytes = 100 << 20 // socket.request.max.bytes
	DefaultMaxInFlight     = 32        // requests read ahead per connection
)

// Config configures a Server. Zero fields take their defaults.
type Config struct {
	// NodeID is this broker's id in Metadata. Default 1.
	NodeID int32
	// AdvertisedAddr is host:port clients are told to connect to; required.
	AdvertisedAddr string
	// ClusterID is reported in Metadata and DescribeCluster. Default "samsa".
	ClusterID string
	// MaxRequestBytes bounds a request frame; a larger one closes the
	// connection (socket.request.max.bytes). Default 100 MiB.
	MaxRequestBytes int32
	// MaxInFlight is how many requests a connection may have in progress
	// before the server stops reading from it. Default 32.
	MaxInFlight int
	// AutoCreateTopics creates topics that Metadata (v0-3 implicitly, or
	// with allow_auto_topic_creation) asks for. Default off.
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics and
	// of CreateTopics asking for -1. Default 1.
	DefaultPartitions int32
	// DefaultReplicationFactor is used for CreateTopics asking for -1 and
	// for auto-created topics. Default 1.
	DefaultReplicationFactor int16
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms. Default 3 s.
	InitialRebalanceDelay time.Duration
	// Registerer receives the server's metrics; nil keeps them unexported.
	Registerer prometheus.Registerer
	// Logger receives connection and protocol events. Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.NodeID == 0 {
		c.NodeID = 1
	}
	if c.ClusterID == "" {
		c.ClusterID = "samsa"
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.DefaultPartitions == 0 {
		c.DefaultPartitions = 1
	}
	if c.DefaultReplicationFactor == 0 {
		c.DefaultReplicationFactor = 1
	}
	if c.InitialRebalanceDelay == 0 {
		c.InitialRebalanceDelay = 3 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server serves the Kafka protocol in front of a replicated log.
type Server struct {
	cfg     Config
	log     *replog.Log
	logger  *slog.Logger
	metrics *metrics
	apis    map[int16]*api
	groups  *group.Coordinator
	txns    *txnCoordinator

	draining  chan struct{} // closed at Shutdown: long-polls answer at once
	drainOnce sync.Once

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closing   bool
	wg        sync.WaitGroup // connections
}

// New returns a server for log. Call Serve with a listener.
func New(log *replog.Log, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if cfg.AdvertisedAddr == "" {
		return nil, errors.New("kafka: AdvertisedAddr is required")
	}
	s := &Server{
		cfg:       cfg,
		log:       log,
		logger:    cfg.Logger.With("component", "kafka"),
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
		draining:  make(chan struct{}),
	}
	s.apis = s.apiTable()
	s.groups = group.New(group.Config{
		Store: log, ErrorCode: s.errCode, Logger: s.logger,
		InitialRebalanceDelay: cfg.InitialRebalanceDelay,
	})
	s.txns = newTxnCoordinator(s)
	var err error
	if s.metrics, err = newMetrics(cfg.Registerer, s); err != nil {
		return nil, err
	}
	return s, nil
}

// Serve accepts connections on ln until ln closes or Shutdown is called.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	s.txns.start()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return fmt.Errorf("kafka: accept: %w", err)
		}
		if !s.track(nc) {
			nc.Close()
			return nil
		}
	}
}

// track starts serving a new connection, unless the server is closing.
func (s *Server) track(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()
	return true
}

// Shutdown stops accepting, stops reading new requests, lets every
// request in progress finish and its response go out, then closes the
// connections. When ctx ends first, the remaining connections are cut.
func (s *Server) Shutdown(ctx context.Context) error {
	s.drainOnce.Do(func() { close(s.draining) })
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	s.groups.Close() // answer waiting joins so their connections drain
	s.txns.close()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.abort()
		}
		s.mu.Unlock()
		<-done
		return fmt.Errorf("kafka: shutdown: %w", ctx.Err())
	}
}

// Connections is the number of open connections.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
