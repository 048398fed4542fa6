package kafka

import (
	"context"
	"errors"
	"net"
	"strconv"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Metadata v1–8. A null topic list means every topic, an empty one none.
// Unknown topics are created when auto-creation is on and the request
// allows it (implicitly below v4). Each partition names its current Raft
// leader; the controller is the meta shard's leader.

func (s *Server) handleMetadata(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.MetadataRequest)
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = s.brokers()
	resp.ClusterID = &s.cfg.ClusterID
	resp.ControllerID = s.controller()

	var names []string
	if r.Topics == nil {
		for _, t := range s.log.Topics() {
			names = append(names, t.Name)
		}
	} else {
		for _, t := range r.Topics {
			if t.Topic != nil {
				names = append(names, *t.Topic)
			}
		}
	}
	autoCreate := s.cfg.AutoCreateTopics && (r.Version < 4 || r.AllowAutoTopicCreation)
	for _, name := range names {
		resp.Topics = append(resp.Topics, s.topicMetadata(ctx, name, autoCreate))
	}
	return resp, nil
}

func (s *Server) topicMetadata(ctx context.Context, name string, autoCreate bool) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = kmsg.StringPtr(name)
	t, ok := s.log.Topic(name)
	if !ok && autoCreate {
		err := s.log.CreateTopic(ctx, replog.TopicSpec{Name: name, Partitions: s.cfg.DefaultPartitions, ReplicationFactor: s.cfg.DefaultReplicationFactor}, false)
		if err != nil && !errors.Is(err, meta.ErrTopicExists) {
			mt.ErrorCode = s.errCode(err)
			return mt
		}
		t, ok = s.log.Topic(name)
	}
	if !ok {
		mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		if meta.ValidateTopicName(name) != nil {
			mt.ErrorCode = kerr.InvalidTopicException.Code
		}
		return mt
	}
	mt.TopicID = t.ID
	for p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = int32(p)
		info, err := s.log.PartitionInfo(replog.TopicPartition{Topic: name, Partition: int32(p)})
		if err != nil {
			mp.ErrorCode = s.errCode(err)
		}
		mp.Leader, mp.LeaderEpoch = -1, -1
		if info.Leader != 0 {
			mp.Leader, mp.LeaderEpoch = int32(info.Leader), info.LeaderEpoch
		} else if err == nil {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mp.Replicas = nodeIDs(info.Replicas)
		mp.ISR = nodeIDs(info.ISR)
		mp.OfflineReplicas = []int32{}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// brokers lists every registered node at its advertised Kafka address.
func (s *Server) brokers() []kmsg.MetadataResponseBroker {
	var out []kmsg.MetadataResponseBroker
	for _, n := range s.log.Nodes() {
		host, port, err := splitHostPort(n.KafkaAddr)
		if err != nil {
			continue
		}
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = int32(n.ID), host, port
		out = append(out, b)
	}
	return out
}

// controller is the meta shard's leader if it is known and registered,
// else this node: clients need a live broker there.
func (s *Server) controller() int32 {
	if id, ok := s.log.Controller(); ok {
		for _, n := range s.log.Nodes() {
			if n.ID == id {
				return int32(id)
			}
		}
	}
	return s.cfg.NodeID
}

func splitHostPort(addr string) (string, int32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	return host, int32(p), err
}

func nodeIDs(ids []uint64) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}
