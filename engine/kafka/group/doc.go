// Package group is Samsa's coordinator of classic Kafka consumer groups:
// membership and rebalances (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
// with KIP-62 rebalance timeouts, KIP-345 static members and KIP-394
// member ids), committed offsets (OffsetCommit, OffsetFetch) and the admin
// view (DescribeGroups, ListGroups, DeleteGroups). Requests and responses
// are franz-go's kmsg types; each response has its request's version.
//
// Membership lives in this node's memory, as in Kafka: a restart makes
// members rejoin. Committed offsets go through the Store (the replicated
// log's meta shard) and survive restarts. Assignments and protocol
// metadata are opaque: client-side assignors pass through untouched.
//
// # States
//
//	state                 meaning                                   leaves when                                     to
//	Empty                 no members (maybe offsets, pending ids)   a member joins                                  PreparingRebalance
//	PreparingRebalance    join phase: members (re)send JoinGroup    all rejoined, or the rebalance timeout passed   CompletingRebalance (Empty if none left)
//	CompletingRebalance   members have the generation; the leader   the leader's SyncGroup                          Stable
//	                      computes assignments                      a member joins, leaves or expires               PreparingRebalance
//	Stable                everyone has an assignment                a member joins, leaves, expires or the leader   PreparingRebalance
//	                                                                rejoins
//	Dead                  being deleted                             the Store deleted its offsets                   (gone)
//
// The first join phase of an empty group lasts InitialRebalanceDelay,
// extended while new members arrive. At the end of a join phase dynamic
// members that did not rejoin are removed; static ones stay (with their
// place in the assignment) until their session expires. Members that do
// not send SyncGroup within the rebalance timeout after a join phase are
// removed and the group rebalances. A member that is not waiting in
// JoinGroup or SyncGroup and sends nothing for its session timeout is
// removed and the group rebalances.
//
// # Concurrency
//
// Each group has its own mutex, and nothing blocks while holding it: a
// JoinGroup or SyncGroup that must wait registers a waiter (a buffered
// channel answered exactly once, under the lock) and waits unlocked, for
// the answer or for its ctx. Timers (session expiry, join phase, sync
// deadline, pending member ids) are time.AfterFunc callbacks that lock the
// group and check that they still apply; Close stops them, answers every
// waiter and waits for callbacks in flight.
//
// The coordinator's mutex guards the map of groups and each group's
// reference count. Lock order: a group's commitMu, then its mu, then the
// coordinator's mu. A group leaves memory when the last reference to it is
// dropped while it is idle (Empty, no members, no pending ids); handlers
// and timer callbacks hold a reference while they use a group, so a group
// is never used after it left. Deletion removes a group at once, and
// holders of a reference to it look it up again.
//
// Offset commits do not hold a group's mutex across the Store's Raft
// proposal: a commit is validated under it, then proposed under the
// group's commitMu, so one group's commits (and its deletion) are proposed
// in the order they were validated, while heartbeats and joins go on.
package group
