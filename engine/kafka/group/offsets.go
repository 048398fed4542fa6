package group

import (
	"context"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetCommit versions 2–7 (v2–4 carry a retention time, ignored: offsets
// are kept until the group or topic is deleted; v6 adds leader epochs, v7
// group.instance.id). OffsetFetch versions 1–5 (v2 adds the top-level error
// and null topics meaning all of the group's offsets; v5 leader epochs).

// OffsetCommit validates a commit against the group's membership as Kafka
// does, then stores it through the Store, which answers per partition
// (an unknown partition is refused alone). A commit with generation -1 and
// no member id (a simple consumer or an admin tool) is accepted while the
// group has no members.
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	resp := kmsg.NewPtrOffsetCommitResponse()
	resp.SetVersion(req.Version)
	var offsets []meta.OffsetCommit
	var codes []*int16 // parallel to offsets
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition = p.Partition
			rt.Partitions = append(rt.Partitions, rp)
			o := meta.OffsetCommit{Topic: t.Topic, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: -1}
			if req.Version >= 6 {
				o.LeaderEpoch = p.LeaderEpoch
			}
			if p.Metadata != nil {
				o.Metadata = *p.Metadata
			}
			offsets = append(offsets, o)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			codes = append(codes, &resp.Topics[i].Partitions[j].ErrorCode)
		}
	}
	setAll := func(code int16) *kmsg.OffsetCommitResponse {
		for _, p := range codes {
			*p = code
		}
		return resp
	}
	if req.Group == "" {
		return setAll(kerr.InvalidGroupID.Code) // the Store cannot hold it
	}
	if len(offsets) == 0 {
		return resp
	}
	g, code := c.lock(req.Group, true, true)
	if code != 0 {
		return setAll(code)
	}
	defer g.commitMu.Unlock() // after the Store call: commits propose in validation order
	var instanceID *string
	if req.Version >= 7 {
		instanceID = req.InstanceID
	}
	code = g.validateCommitLocked(req.Generation, req.MemberID, instanceID)
	c.unlock(g)
	if code != 0 {
		return setAll(code)
	}
	errs, err := c.cfg.Store.CommitOffsets(ctx, req.Group, offsets)
	if err != nil {
		return setAll(c.cfg.ErrorCode(err))
	}
	for i, p := range codes {
		if i < len(errs) && errs[i] != nil {
			*p = c.cfg.ErrorCode(errs[i])
		}
	}
	return resp
}

// validateCommitLocked is Kafka's validateOffsetCommit and the state check
// of doCommitOffsets.
func (g *group) validateCommitLocked(generation int32, memberID string, instanceID *string) int16 {
	if g.state == stateDead {
		return kerr.CoordinatorNotAvailable.Code
	}
	known := len(g.members) > 0 || len(g.pending) > 0 || g.generation > 0
	switch {
	case !known && generation >= 0:
		return kerr.IllegalGeneration.Code // a commit from a generation of a group that is gone
	case generation >= 0 || memberID != "" || instanceID != nil:
		if code := g.validateMemberLocked(memberID, instanceID); code != 0 {
			return code
		}
		if generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
	case g.state != stateEmpty:
		return kerr.UnknownMemberID.Code // only members commit to a group with members
	}
	switch g.state {
	case stateCompletingRebalance:
		// The member has its new generation but not its assignment yet.
		return kerr.RebalanceInProgress.Code
	case stateStable, statePreparingRebalance:
		// Commits during the join phase are allowed: the member learns of
		// the rebalance from its heartbeat.
		if m := g.members[memberID]; m != nil {
			g.touchLocked(m)
		}
	}
	return 0
}

// OffsetFetch returns a group's committed offsets from the Store: for the
// partitions asked (offset -1, leader epoch -1 and no error when nothing is
// committed, known topic or not) or, with null topics (v2+), all of them.
func (c *Coordinator) OffsetFetch(_ context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := kmsg.NewPtrOffsetFetchResponse()
	resp.SetVersion(req.Version)
	closed := c.closed.Load()
	if closed && req.Version >= 2 {
		resp.ErrorCode = kerr.NotCoordinator.Code
		return resp
	}
	if req.Topics == nil && req.Version >= 2 {
		for _, o := range c.cfg.Store.GroupOffsets(req.Group) {
			if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != o.Topic {
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = o.Topic
				resp.Topics = append(resp.Topics, rt)
			}
			rt := &resp.Topics[len(resp.Topics)-1]
			rt.Partitions = append(rt.Partitions, fetched(o.Partition, o.CommittedOffset, true))
		}
		return resp
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			var rp kmsg.OffsetFetchResponseTopicPartition
			if closed {
				rp = fetched(p, meta.CommittedOffset{}, false)
				rp.ErrorCode = kerr.NotCoordinator.Code
			} else {
				o, ok := c.cfg.Store.CommittedOffset(req.Group, replog.TopicPartition{Topic: t.Topic, Partition: p})
				rp = fetched(p, o, ok)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// fetched is one partition of an OffsetFetch answer.
func fetched(partition int32, o meta.CommittedOffset, ok bool) kmsg.OffsetFetchResponseTopicPartition {
	rp := kmsg.NewOffsetFetchResponseTopicPartition()
	rp.Partition = partition
	rp.Offset, rp.LeaderEpoch, rp.Metadata = -1, -1, kmsg.StringPtr("")
	if ok {
		rp.Offset, rp.LeaderEpoch, rp.Metadata = o.Offset, o.LeaderEpoch, kmsg.StringPtr(o.Metadata)
	}
	return rp
}
