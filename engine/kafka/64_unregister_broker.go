package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// UnregisterBroker v0: take a node out of the cluster, as `samsa cluster
// remove-node` does after moving its replicas away (and as Kafka's admin
// unregisterBroker asks). It is refused while the node holds replicas or
// is the target of a move. The node leaves the metadata and the meta
// shard; if it was a voter of the meta shard, a node that joined later
// takes its vote first. Its id cannot be used again.

func (s *Server) handleUnregisterBroker(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.UnregisterBrokerRequest)
	resp := r.ResponseKind().(*kmsg.UnregisterBrokerResponse)
	ctx, cancel := requestTimeout(ctx, 0)
	defer cancel()
	var err error
	switch id := r.BrokerID; {
	case id <= 0:
		err = fmt.Errorf("%w: broker id %d", kerr.BrokerIDNotRegistered, id)
	case uint64(id) == s.log.NodeID():
		err = fmt.Errorf("%w: node %d cannot remove itself; ask another node", kerr.InvalidRequest, id)
	default:
		err = s.log.RemoveNode(ctx, uint64(id))
	}
	resp.ErrorCode, resp.ErrorMessage = s.errCode(err), errorMessage(err)
	return resp, nil
}
