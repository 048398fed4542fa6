package meta

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Transactions: the state of Kafka's transaction coordinator, one Txn per
// transactional id (Kafka's TransactionMetadata). The commands below move
// a transaction through its states; writing the markers to the
// partitions between Prepare and Complete is the coordinator's
// (engine/kafka), which carries on with every transaction left in a
// Prepare state after a restart or a change of meta leader.
//
//	Empty ─AddTxnPartitions/AddTxnGroup→ Ongoing ─EndTxn→ PrepareCommit ─CompleteTxn→ CompleteCommit
//	                                         └─EndTxn, AbortTxn→ PrepareAbort ─CompleteTxn→ CompleteAbort
//	Complete* ─AddTxn…→ Ongoing (the next transaction);  Empty, Complete* ─InitTxnProducer→ Empty, epoch+1
//
// Offsets committed in a transaction (TxnCommitOffsets) wait in the Txn
// and become the group's committed offsets in the same apply that
// decides the commit (EndTxn), so they are visible only on commit.

// TxnStatus is where a transaction is in its life.
type TxnStatus uint8

// Transaction states, as Kafka names them.
const (
	TxnEmpty TxnStatus = iota
	TxnOngoing
	TxnPrepareCommit
	TxnPrepareAbort
	TxnCompleteCommit
	TxnCompleteAbort
	numTxnStatus
)

var txnStatusNames = [numTxnStatus]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort"}

func (s TxnStatus) String() string {
	if s < numTxnStatus {
		return txnStatusNames[s]
	}
	return fmt.Sprintf("TxnStatus(%d)", uint8(s))
}

// Preparing reports a decided transaction whose markers may not all be
// written yet.
func (s TxnStatus) Preparing() bool { return s == TxnPrepareCommit || s == TxnPrepareAbort }

// MaxTxnTimeoutMs is the longest transaction timeout a producer may ask
// for (Kafka's transaction.max.timeout.ms).
const MaxTxnTimeoutMs = 15 * 60 * 1000

// Txn is one transactional id's producer and its current transaction.
type Txn struct {
	ID         string
	ProducerID int64
	Epoch      int16
	// LastEpoch is the epoch before the coordinator fenced the producer
	// by aborting on its behalf (AbortTxn with Fence), -1 if it has not:
	// that producer may still recover with InitProducerId (KIP-360).
	LastEpoch int16
	Status    TxnStatus
	TimeoutMs int32
	// Partitions and Groups are what the current transaction wrote to and
	// committed offsets for, sorted.
	Partitions []TopicPartition `json:",omitempty"`
	Groups     []string         `json:",omitempty"`
	// Offsets are the offsets committed in the transaction, by group,
	// topic, partition: they reach the groups when it commits.
	Offsets  []TxnOffset `json:",omitempty"`
	StartMs  int64       // when the current transaction began (Ongoing)
	UpdateMs int64       // the last change
}

// TxnOffset is one offset committed in a transaction.
type TxnOffset struct {
	Group string
	OffsetCommit
}

// InitTxnProducer gives a transactional id its producer: a new producer
// id at epoch 0 for an unknown id, else the next epoch of its producer id
// (a fresh id when the epoch is exhausted), which fences older instances.
// ProducerID and Epoch are the caller's (KIP-360), -1 if it has none.
// Refused with ErrConcurrentTransactions while a transaction is open or
// being completed: the coordinator aborts or completes it first.
// Result.Value is the producer id, Result.Version the epoch.
type InitTxnProducer struct {
	TxnID      string
	TimeoutMs  int32
	ProducerID int64
	Epoch      int16
	NowMs      int64
}

// AddTxnPartitions adds partitions to the producer's transaction,
// beginning one if none is open.
type AddTxnPartitions struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	Partitions []TopicPartition
	NowMs      int64
}

// AddTxnGroup adds a consumer group whose offsets the transaction will
// commit, beginning a transaction if none is open.
type AddTxnGroup struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	Group      string
	NowMs      int64
}

// TxnCommitOffsets commits a group's offsets as part of a transaction
// that AddTxnGroup added the group to. Each entry is accepted or refused
// on its own (Result.Items), as in CommitOffsets.
type TxnCommitOffsets struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	Group      string
	Offsets    []OffsetCommit
	NowMs      int64
}

// EndTxn decides the open transaction: PrepareCommit (its offsets become
// the groups') or PrepareAbort. Ending a transaction again with the same
// decision changes nothing and succeeds, so a retried EndTxn is answered
// as the first was.
type EndTxn struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	Commit     bool
	NowMs      int64
}

// CompleteTxn records that every marker of a decided transaction is
// written.
type CompleteTxn struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	NowMs      int64
}

// AbortTxn aborts an open transaction on the coordinator's initiative:
// it timed out, or a new instance of the producer is initialising. With
// Fence the epoch moves on, so the old instance can no longer write.
type AbortTxn struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	Fence      bool
	NowMs      int64
}

func (InitTxnProducer) op() string  { return "init_txn_producer" }
func (AddTxnPartitions) op() string { return "add_txn_partitions" }
func (AddTxnGroup) op() string      { return "add_txn_group" }
func (TxnCommitOffsets) op() string { return "txn_commit_offsets" }
func (EndTxn) op() string           { return "end_txn" }
func (CompleteTxn) op() string      { return "complete_txn" }
func (AbortTxn) op() string         { return "abort_txn" }

// Txn returns a transactional id's state.
func (s *State) Txn(id string) (Txn, bool) {
	t, ok := s.txns[id]
	if !ok {
		return Txn{}, false
	}
	return t.clone(), true
}

// OpenTxns returns the transactions that are Ongoing or being completed,
// by id: what a coordinator must watch for timeouts and finish.
func (s *State) OpenTxns() []Txn {
	var out []Txn
	for _, id := range sortedKeys(s.txns) {
		if t := s.txns[id]; t.Status == TxnOngoing || t.Status.Preparing() {
			out = append(out, t.clone())
		}
	}
	return out
}

func (t *Txn) clone() Txn {
	c := *t
	c.Partitions = slices.Clone(t.Partitions)
	c.Groups = slices.Clone(t.Groups)
	c.Offsets = slices.Clone(t.Offsets)
	return c
}

func checkTxnID(id string) error {
	if id == "" || len(id) > MaxNameLen {
		return fmt.Errorf("%w: transactional id %q: length must be 1 to %d", ErrInvalidRequest, id, MaxNameLen)
	}
	return nil
}

// txnOf returns the transaction of id if the caller's producer id and
// epoch are its current ones.
func (s *State) txnOf(id string, producerID int64, epoch int16) (*Txn, error) {
	if err := checkTxnID(id); err != nil {
		return nil, err
	}
	t := s.txns[id]
	switch {
	case t == nil:
		return nil, fmt.Errorf("%w: transactional id %q has no producer", ErrInvalidProducerIDMapping, id)
	case t.ProducerID != producerID:
		return nil, fmt.Errorf("%w: transactional id %q has producer %d, not %d", ErrInvalidProducerIDMapping, id, t.ProducerID, producerID)
	case t.Epoch != epoch:
		return nil, fmt.Errorf("%w: transactional id %q is at epoch %d, not %d", ErrProducerFenced, id, t.Epoch, epoch)
	}
	return t, nil
}

func (s *State) initTxnProducer(c InitTxnProducer) Result {
	if err := checkTxnID(c.TxnID); err != nil {
		return refuse(err)
	}
	if c.TimeoutMs < 1 || c.TimeoutMs > MaxTxnTimeoutMs {
		return refuse(fmt.Errorf("%w: %d ms (1 to %d)", ErrInvalidTxnTimeout, c.TimeoutMs, MaxTxnTimeoutMs))
	}
	t := s.txns[c.TxnID]
	if t == nil {
		if c.ProducerID >= 0 {
			return refuse(fmt.Errorf("%w: transactional id %q has no producer", ErrInvalidProducerIDMapping, c.TxnID))
		}
		t = &Txn{ID: c.TxnID, ProducerID: s.nextProducerID, Epoch: 0, LastEpoch: -1}
		s.nextProducerID++
		s.txns[c.TxnID] = t
	} else {
		switch {
		case t.Status == TxnOngoing || t.Status.Preparing():
			return refuse(fmt.Errorf("%w: transactional id %q is %v", ErrConcurrentTransactions, c.TxnID, t.Status))
		case c.ProducerID >= 0 && c.ProducerID != t.ProducerID:
			return refuse(fmt.Errorf("%w: transactional id %q has producer %d, not %d", ErrInvalidProducerIDMapping, c.TxnID, t.ProducerID, c.ProducerID))
		case c.ProducerID >= 0 && c.Epoch != t.Epoch && c.Epoch != t.LastEpoch:
			return refuse(fmt.Errorf("%w: transactional id %q is at epoch %d, not %d", ErrProducerFenced, c.TxnID, t.Epoch, c.Epoch))
		}
		if t.Epoch >= math.MaxInt16-1 {
			t.ProducerID, t.Epoch = s.nextProducerID, 0
			s.nextProducerID++
		} else {
			t.Epoch++
		}
		t.LastEpoch = -1
	}
	t.Status, t.TimeoutMs, t.UpdateMs = TxnEmpty, c.TimeoutMs, c.NowMs
	t.Partitions, t.Groups, t.Offsets = nil, nil, nil
	s.changed()
	return Result{Value: uint64(t.ProducerID), Version: uint64(t.Epoch)}
}

// begin makes t Ongoing if it is not, so that something can be added.
func (t *Txn) begin(now int64) error {
	switch {
	case t.Status.Preparing():
		return fmt.Errorf("%w: transactional id %q is %v", ErrConcurrentTransactions, t.ID, t.Status)
	case t.Status != TxnOngoing:
		t.Status, t.StartMs = TxnOngoing, now
		t.Partitions, t.Groups, t.Offsets = nil, nil, nil
	}
	return nil
}

func (s *State) addTxnPartitions(c AddTxnPartitions) Result {
	t, err := s.txnOf(c.TxnID, c.ProducerID, c.Epoch)
	if err != nil {
		return refuse(err)
	}
	if t.Status.Preparing() {
		return refuse(fmt.Errorf("%w: transactional id %q is %v", ErrConcurrentTransactions, t.ID, t.Status))
	}
	for _, tp := range c.Partitions {
		if !s.partitionExists(tp.Topic, tp.Partition) {
			return refuse(fmt.Errorf("%w: %s-%d", ErrUnknownTopic, tp.Topic, tp.Partition))
		}
	}
	if err := t.begin(c.NowMs); err != nil {
		return refuse(err)
	}
	for _, tp := range c.Partitions {
		if i, found := slices.BinarySearchFunc(t.Partitions, tp, compareTP); !found {
			t.Partitions = slices.Insert(t.Partitions, i, tp)
		}
	}
	t.UpdateMs = c.NowMs
	s.changed()
	return success(0)
}

func (s *State) addTxnGroup(c AddTxnGroup) Result {
	t, err := s.txnOf(c.TxnID, c.ProducerID, c.Epoch)
	if err != nil {
		return refuse(err)
	}
	if err := checkGroup(c.Group); err != nil {
		return refuse(err)
	}
	if err := t.begin(c.NowMs); err != nil {
		return refuse(err)
	}
	if i, found := slices.BinarySearch(t.Groups, c.Group); !found {
		t.Groups = slices.Insert(t.Groups, i, c.Group)
	}
	t.UpdateMs = c.NowMs
	s.changed()
	return success(0)
}

func (s *State) txnCommitOffsets(c TxnCommitOffsets) Result {
	t, err := s.txnOf(c.TxnID, c.ProducerID, c.Epoch)
	if err != nil {
		return refuse(err)
	}
	if err := checkGroup(c.Group); err != nil {
		return refuse(err)
	}
	if _, in := slices.BinarySearch(t.Groups, c.Group); t.Status != TxnOngoing || !in {
		return refuse(fmt.Errorf("%w: group %q is not in transactional id %q's transaction (%v)", ErrInvalidTxnState, c.Group, t.ID, t.Status))
	}
	items := make([]Code, len(c.Offsets))
	for i, o := range c.Offsets {
		switch {
		case !s.partitionExists(o.Topic, o.Partition):
			items[i] = CodeUnknownTopic
			continue
		case len(o.Metadata) > MaxMetadataBytes:
			items[i] = CodeMetadataTooLarge
			continue
		}
		v := TxnOffset{Group: c.Group, OffsetCommit: o}
		j, found := slices.BinarySearchFunc(t.Offsets, v, compareTxnOffset)
		if found {
			t.Offsets[j] = v
		} else {
			t.Offsets = slices.Insert(t.Offsets, j, v)
		}
	}
	t.UpdateMs = c.NowMs
	s.changed()
	return Result{Items: items}
}

func compareTxnOffset(a, b TxnOffset) int {
	return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

func (s *State) endTxn(c EndTxn) Result {
	t, err := s.txnOf(c.TxnID, c.ProducerID, c.Epoch)
	if err != nil {
		return refuse(err)
	}
	prepare, complete := TxnPrepareAbort, TxnCompleteAbort
	if c.Commit {
		prepare, complete = TxnPrepareCommit, TxnCompleteCommit
	}
	switch t.Status {
	case prepare, complete:
		return success(0) // a retry: answered as the first was
	case TxnOngoing:
	default:
		return refuse(fmt.Errorf("%w: transactional id %q is %v: nothing to %s", ErrInvalidTxnState, t.ID, t.Status, map[bool]string{true: "commit", false: "abort"}[c.Commit]))
	}
	if c.Commit {
		s.commitTxnOffsets(t, c.NowMs)
	}
	t.Status, t.Offsets, t.UpdateMs = prepare, nil, c.NowMs
	s.changed()
	return success(0)
}

// commitTxnOffsets makes a committing transaction's offsets the groups'.
// A partition deleted since its offset was accepted is skipped, as
// DeleteTopic would have dropped its offset.
func (s *State) commitTxnOffsets(t *Txn, now int64) {
	for _, o := range t.Offsets {
		if !s.partitionExists(o.Topic, o.Partition) {
			continue
		}
		g := s.groups[o.Group]
		if g == nil {
			g = groupOffsets{}
			s.groups[o.Group] = g
		}
		parts := g[o.Topic]
		if parts == nil {
			parts = map[int32]CommittedOffset{}
			g[o.Topic] = parts
		}
		parts[o.Partition] = CommittedOffset{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitMs: now}
	}
}

func (s *State) completeTxn(c CompleteTxn) Result {
	t, err := s.txnOf(c.TxnID, c.ProducerID, c.Epoch)
	if err != nil {
		return refuse(err)
	}
	switch t.Status {
	case TxnPrepareCommit:
		t.Status = TxnCompleteCommit
	case TxnPrepareAbort:
		t.Status = TxnCompleteAbort
	default:
		return refuse(fmt.Errorf("%w: transactional id %q is %v: nothing to complete", ErrInvalidTxnState, t.ID, t.Status))
	}
	t.Partitions, t.Groups, t.UpdateMs = nil, nil, c.NowMs
	s.changed()
	return success(0)
}

func (s *State) abortTxn(c AbortTxn) Result {
	t, err := s.txnOf(c.TxnID, c.ProducerID, c.Epoch)
	if err != nil {
		return refuse(err)
	}
	if t.Status != TxnOngoing {
		return refuse(fmt.Errorf("%w: transactional id %q is %v: nothing to abort", ErrInvalidTxnState, t.ID, t.Status))
	}
	if c.Fence && t.Epoch < math.MaxInt16-1 {
		t.LastEpoch = t.Epoch
		t.Epoch++
	}
	t.Status, t.Offsets, t.UpdateMs = TxnPrepareAbort, nil, c.NowMs
	s.changed()
	return success(0)
}

// checkTxns checks restored transactions the way Apply keeps them.
func checkTxns(txns []Txn) error {
	if err := ascending("transactional id", keysOf(txns, func(t Txn) string { return t.ID })); err != nil {
		return err
	}
	for _, t := range txns {
		switch {
		case checkTxnID(t.ID) != nil:
			return fmt.Errorf("transactional id %q", t.ID)
		case t.ProducerID < FirstProducerID || t.Epoch < 0 || t.LastEpoch < -1:
			return fmt.Errorf("transactional id %q: producer %d epoch %d", t.ID, t.ProducerID, t.Epoch)
		case t.Status >= numTxnStatus:
			return fmt.Errorf("transactional id %q: status %d", t.ID, t.Status)
		case !slices.IsSortedFunc(t.Partitions, compareTP), !slices.IsSorted(t.Groups), !slices.IsSortedFunc(t.Offsets, compareTxnOffset):
			return fmt.Errorf("transactional id %q: collections out of order", t.ID)
		}
	}
	return nil
}
