package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// IncrementalAlterConfigs v0–1: SET and DELETE a topic's configs.
// APPEND and SUBTRACT (list values) are refused: no list config here
// takes more than one value.

const (
	opSet    = 0
	opDelete = 1
)

func (s *Server) handleIncrementalAlterConfigs(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.IncrementalAlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, res := range r.Resources {
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		set := map[string]string{}
		var del []string
		var err error
		if res.ResourceType != resourceTopic {
			err = fmt.Errorf("%w: only topic configs can be altered", kerr.InvalidRequest)
		}
		for _, c := range res.Configs {
			switch {
			case err != nil:
			case c.Op == opSet && c.Value != nil:
				set[c.Name] = *c.Value
			case c.Op == opDelete:
				del = append(del, c.Name)
			default:
				err = fmt.Errorf("%w: operation %d on %q is not supported (only SET and DELETE)", kerr.InvalidRequest, c.Op, c.Name)
			}
		}
		if err == nil {
			err = s.log.AlterConfigs(ctx, res.ResourceName, set, del, false, r.ValidateOnly)
		}
		rr.ErrorCode, rr.ErrorMessage = s.errCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}
