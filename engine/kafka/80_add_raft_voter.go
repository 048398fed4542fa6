package kafka

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddRaftVoter v0: add a node to the cluster, as `samsa cluster add-node`
// asks. Kafka uses it to add a voter to its metadata quorum; Samsa reads
// it as "let this node in": the node, started with `samsa serve --join`,
// becomes a non-voting member of the meta shard (the voters stay the
// initial peers), receives the metadata, registers its Kafka address and
// gets replicas of new and moved partitions like any other. The listener
// named RAFT carries its Raft address; the directory id is not used.

// raftListener is the listener name AddRaftVoter's Raft address goes by.
const raftListener = "RAFT"

func (s *Server) handleAddRaftVoter(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.AddRaftVoterRequest)
	resp := r.ResponseKind().(*kmsg.AddRaftVoterResponse)
	ctx, cancel := requestTimeout(ctx, r.TimeoutMillis)
	defer cancel()
	addr := ""
	for _, l := range r.Listeners {
		if l.Name == raftListener {
			addr = net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port)))
		}
	}
	var err error
	switch {
	case r.VoterID <= 0:
		err = fmt.Errorf("%w: node id %d", kerr.InvalidRequest, r.VoterID)
	case addr == "":
		err = fmt.Errorf("%w: no listener named %s with the node's Raft address", kerr.InvalidRequest, raftListener)
	default:
		err = s.log.AddNode(ctx, uint64(r.VoterID), addr)
	}
	resp.ErrorCode, resp.ErrorMessage = s.errCode(err), errorMessage(err)
	return resp, nil
}
