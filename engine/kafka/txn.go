package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The transaction coordinator. Its state is the meta shard's
// (meta/txn.go), so it runs where group coordination does: on the node
// that leads the meta shard. The handlers (22, 24, 25, 26, 28) turn
// requests into meta commands; what they cannot do in one command — write
// a decided transaction's markers to its partitions, then record it
// complete — is txnCoordinator's. The markers go to each partition's
// leader: in-process when that is this node, else as Kafka's
// WriteTxnMarkers to the leader's listener, as Kafka's coordinator does.
//
// Nothing of a transaction in progress lives only in memory. A decided
// transaction whose markers were not all written when its coordinator
// died stays PrepareCommit or PrepareAbort in the meta shard, and the
// next coordinator's sweep finishes it; an open one that outlives its
// timeout is aborted by the sweep, with the producer's epoch bumped so
// that the old instance can write no more.

// txnSweepInterval is how often the coordinator looks for transactions
// to finish or time out.
const txnSweepInterval = 500 * time.Millisecond

// txnCoordinator finishes decided transactions and aborts timed-out ones.
type txnCoordinator struct {
	s      *Server
	logger *slog.Logger

	mu        sync.Mutex
	finishing map[string]chan struct{} // transactional id → closed when its finish ends
	clients   map[string]*kgo.Client   // Kafka address → a client for WriteTxnMarkers there
	started   bool
	stop      chan struct{}
	done      chan struct{}
}

func newTxnCoordinator(s *Server) *txnCoordinator {
	return &txnCoordinator{
		s: s, logger: s.logger.With("component", "txn-coordinator"),
		finishing: map[string]chan struct{}{}, clients: map[string]*kgo.Client{},
		stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// start runs the sweep until close; later calls do nothing.
func (c *txnCoordinator) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return
	}
	c.started = true
	go c.sweepLoop()
}

// close stops the sweep and closes the clients to other nodes.
func (c *txnCoordinator) close() {
	c.mu.Lock()
	started := c.started
	c.started = true // no start after close
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.mu.Unlock()
	if started {
		<-c.done
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, cl := range c.clients {
		cl.Close()
		delete(c.clients, addr)
	}
}

func (c *txnCoordinator) sweepLoop() {
	defer close(c.done)
	t := time.NewTicker(txnSweepInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		if !c.s.coordinates() {
			continue
		}
		c.sweep()
	}
}

// sweep starts finishing every decided transaction and aborts the open
// ones past their timeout.
func (c *txnCoordinator) sweep() {
	now := time.Now().UnixMilli()
	for _, t := range c.s.log.OpenTxns() {
		switch {
		case t.Status.Preparing():
			c.finishAsync(t.ID)
		case t.Status == meta.TxnOngoing && now > t.StartMs+int64(t.TimeoutMs):
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := c.s.log.AbortTxn(ctx, t.ID, t.ProducerID, t.Epoch, true)
			cancel()
			if err != nil {
				c.logger.Warn("aborting a timed-out transaction", "transactional_id", t.ID, "err", err)
				continue
			}
			c.logger.Info("aborted a transaction past its timeout", "transactional_id", t.ID, "producer_id", t.ProducerID, "timeout_ms", t.TimeoutMs)
			c.finishAsync(t.ID)
		}
	}
}

func (c *txnCoordinator) finishAsync(id string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.finish(ctx, id); err != nil && ctx.Err() == nil {
			c.logger.Warn("finishing a transaction", "transactional_id", id, "err", err)
		}
	}()
}

// finish writes the markers of a decided transaction and records it
// complete. It returns at once if the transaction is not decided; if
// another finish of it is running, it waits for that one.
func (c *txnCoordinator) finish(ctx context.Context, id string) error {
	for {
		c.mu.Lock()
		running, busy := c.finishing[id]
		if !busy {
			running = make(chan struct{})
			c.finishing[id] = running
		}
		c.mu.Unlock()
		if busy {
			select {
			case <-running:
				continue // it may have stopped early: look again
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err := c.finishOnce(ctx, id)
		c.mu.Lock()
		delete(c.finishing, id)
		close(running)
		c.mu.Unlock()
		return err
	}
}

func (c *txnCoordinator) finishOnce(ctx context.Context, id string) error {
	return c.s.log.FinishTxn(ctx, id, c.writeMarker)
}

// writeMarker writes one partition's marker, retrying while its leader
// moves, until ctx ends. A partition deleted since needs none.
func (c *txnCoordinator) writeMarker(ctx context.Context, tp replog.TopicPartition, pid int64, epoch int16, commit bool) error {
	backoff := 20 * time.Millisecond
	for {
		err := c.writeMarkerOnce(ctx, tp, pid, epoch, commit)
		switch {
		case err == nil, errors.Is(err, replog.ErrUnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicOrPartition):
			return nil
		case !retriableMarkerError(err):
			return fmt.Errorf("%s-%d: %w", tp.Topic, tp.Partition, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s-%d: %w (last: %v)", tp.Topic, tp.Partition, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// retriableMarkerError reports whether writing a marker may succeed if
// tried again: its leader is moving or unreachable. A fenced or refused
// marker will not.
func retriableMarkerError(err error) bool {
	var ke interface{ IsRetriable() bool }
	if errors.As(err, &ke) {
		return ke.IsRetriable()
	}
	return errors.Is(err, replog.ErrNotLeader) || errors.Is(err, replog.ErrLeaderNotAvailable) ||
		errors.Is(err, replog.ErrTimeout) || errors.Is(err, replog.ErrClosed) || errors.Is(err, errRemote)
}

// errRemote marks a failure to reach another node.
var errRemote = errors.New("kafka: reaching the partition leader")

func (c *txnCoordinator) writeMarkerOnce(ctx context.Context, tp replog.TopicPartition, pid int64, epoch int16, commit bool) error {
	info, err := c.s.log.PartitionInfo(tp)
	if err != nil {
		return err
	}
	if info.Leader == 0 {
		return replog.ErrLeaderNotAvailable
	}
	if int32(info.Leader) == c.s.cfg.NodeID {
		return c.s.log.WriteTxnMarker(ctx, tp, pid, epoch, commit, 0)
	}
	var addr string
	for _, n := range c.s.log.Nodes() {
		if n.ID == info.Leader {
			addr = n.KafkaAddr
		}
	}
	if addr == "" {
		return replog.ErrLeaderNotAvailable
	}
	cl, err := c.client(addr)
	if err != nil {
		return fmt.Errorf("%w: %v", errRemote, err)
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed = pid, epoch, commit
	rt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	rt.Topic, rt.Partitions = tp.Topic, []int32{tp.Partition}
	m.Topics = append(m.Topics, rt)
	req.Markers = append(req.Markers, m)
	resp, err := req.RequestWith(ctx, cl.SeedBrokers()[0])
	if err != nil {
		return fmt.Errorf("%w: %v", errRemote, err)
	}
	for _, rm := range resp.Markers {
		for _, t := range rm.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// client returns a Kafka client talking to addr only.
func (c *txnCoordinator) client(addr string) (*kgo.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl := c.clients[addr]; cl != nil {
		return cl, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("samsa-txn-coordinator"))
	if err != nil {
		return nil, err
	}
	c.clients[addr] = cl
	return cl, nil
}
