package replica

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/client"
	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/samsa-io/samsa/log/meta"
)

// Meta is this host's replica of the meta shard: the cluster metadata,
// readable at any time, and the way to change it.
type Meta struct {
	host    *Host
	session *client.Session
	sem     chan struct{}

	mu      sync.RWMutex // guards st
	st      *meta.State
	changed Notifier
	voter   atomic.Bool // a voter of the meta shard, not a non-voting member
}

// StartMeta starts this host's replica of the meta shard. members maps
// node ids (the meta replicas' ids) to Raft addresses; join starts an
// empty non-voting replica that an existing cluster adds (Meta.AddNonVoting
// on a member). A replica this host ran before restarts in the role it
// last had, whatever members and join say.
func (h *Host) StartMeta(members map[uint64]string, join bool) (*Meta, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.meta != nil {
		return h.meta, nil
	}
	m := &Meta{host: h, session: h.nh.GetNoOPSession(meta.MetaShardID), st: meta.NewState(), sem: make(chan struct{}, h.cfg.MaxInFlight)}
	fresh := !h.nh.HasNodeInfo(meta.MetaShardID, h.cfg.NodeID)
	role, err := h.metaRole(fresh, join)
	if err != nil {
		return nil, err
	}
	targets := map[uint64]dragonboat.Target{}
	if fresh && !join {
		for id, addr := range members {
			targets[id] = addr
		}
	}
	cfg := h.shardConfig(meta.MetaShardID, h.cfg.NodeID)
	cfg.SnapshotEntries = 10_000 // the whole state is snapshotted: keep the log short
	cfg.IsNonVoting = role == metaNonVoting
	create := func(shardID, replicaID uint64) sm.IStateMachine { return (*metaSM)(m) }
	if err := h.nh.StartReplica(targets, fresh && join, create, cfg); err != nil {
		return nil, fmt.Errorf("replica: start the meta shard: %w", mapError(err))
	}
	m.voter.Store(role == metaVoter)
	h.meta = m
	return m, nil
}

// The meta replica's role is kept in a file beside dragonboat's data: a
// replica restarts in the role it had (dragonboat panics when a
// non-voting member's own replica runs as a voter), and only this host
// knows when it was promoted (MarkVoter).
const (
	metaRoleFile  = "meta-role"
	metaVoter     = "voter"
	metaNonVoting = "non-voting"
)

func (h *Host) metaRole(fresh, join bool) (string, error) {
	path := filepath.Join(h.cfg.Dir, metaRoleFile)
	if !fresh {
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return metaVoter, nil // written by every start since roles exist; before, all were voters
		}
		if err != nil {
			return "", fmt.Errorf("replica: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	role := metaVoter
	if join {
		role = metaNonVoting
	}
	return role, writeFileSync(path, role+"\n")
}

// Voter reports whether this host's meta replica is a voter.
func (m *Meta) Voter() bool { return m.voter.Load() }

// MarkVoter records that this host's meta replica was promoted to a
// voter, so that it restarts as one; a snapshot first puts the promotion
// behind what a restart re-applies (Host.snapshot).
func (m *Meta) MarkVoter(ctx context.Context) error {
	if m.voter.Load() {
		return nil
	}
	if err := m.host.snapshot(ctx, meta.MetaShardID); err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(m.host.cfg.Dir, metaRoleFile), metaVoter+"\n"); err != nil {
		return err
	}
	m.voter.Store(true)
	return nil
}

// writeFileSync replaces a small file durably.
func writeFileSync(path, content string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("replica: %w", err)
	}
	return nil
}

// Read calls fn with the metadata as this replica has applied it. fn must
// not keep references to what it reads or call back into Meta.
func (m *Meta) Read(fn func(*meta.State)) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	fn(m.st)
}

// Barrier waits until this replica has applied everything the meta
// shard had committed when Barrier was called (a Raft ReadIndex), so that
// a Read after it is linearizable: no change acknowledged anywhere before
// the call is missing.
func (m *Meta) Barrier(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, m.host.cfg.ProposalTimeout) // dragonboat needs a deadline
	defer cancel()
	if _, err := m.host.nh.SyncRead(ctx, meta.MetaShardID, barrierQuery{}); err != nil {
		return fmt.Errorf("replica: meta shard: %w", mapError(err))
	}
	return nil
}

type barrierQuery struct{}

// Changed returns a channel closed at the next change of the metadata.
func (m *Meta) Changed() <-chan struct{} { return m.changed.Wait() }

// Leader returns the meta shard's leader (the controller) as this node
// knows it.
func (m *Meta) Leader() (leaderID, term uint64, ok bool) { return m.host.Leader(meta.MetaShardID) }

// Propose proposes a metadata change and waits until it is applied here,
// so a Read after Propose returns sees it. A refusal (topic exists, ...)
// is in Result.Err(); the error is for the proposal itself.
func (m *Meta) Propose(ctx context.Context, cmd meta.Command) (meta.Result, error) {
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return meta.Result{}, ctx.Err()
	}
	defer func() { <-m.sem }()
	ctx, cancel := context.WithTimeout(ctx, m.host.cfg.ProposalTimeout)
	defer cancel()
	r, err := m.host.nh.SyncPropose(ctx, m.session, meta.Encode(cmd))
	if err != nil {
		return meta.Result{}, fmt.Errorf("replica: meta shard: %w", mapError(err))
	}
	return meta.DecodeResult(r.Value, r.Data)
}

// metaSM is dragonboat's in-memory state machine for the meta shard: the
// state lives in memory and is rebuilt from snapshots and the Raft log.
type metaSM Meta

func (s *metaSM) Update(e sm.Entry) (sm.Result, error) {
	s.mu.Lock()
	r := s.st.Apply(e.Cmd)
	s.mu.Unlock()
	s.changed.Broadcast()
	v, data := meta.EncodeResult(r)
	return sm.Result{Value: v, Data: data}, nil
}

// Lookup serves only Barrier; reads go through Meta.Read.
func (s *metaSM) Lookup(q any) (any, error) {
	if _, ok := q.(barrierQuery); ok {
		return nil, nil
	}
	return nil, fmt.Errorf("replica: use Meta.Read")
}

func (s *metaSM) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.Save(w)
}

// RecoverFromSnapshot reads the one JSON value SaveSnapshot wrote and no
// further: dragonboat's snapshot reader does not end with a clean io.EOF
// after the payload (a restart from the meta shard's own snapshot failed
// with "data after the snapshot").
func (s *metaSM) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	var raw json.RawMessage
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		return fmt.Errorf("replica: meta snapshot: %w", err)
	}
	s.mu.Lock()
	err := s.st.Load(bytes.NewReader(raw))
	s.mu.Unlock()
	s.changed.Broadcast()
	return err
}

func (s *metaSM) Close() error { return nil }
