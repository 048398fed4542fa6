package kafka

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs v0–1, Kafka's legacy form: the configs given replace a
// topic's whole set. Broker configs are read-only here.

func (s *Server) handleAlterConfigs(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.AlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, res := range r.Resources {
		rr := kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		var err error
		if res.ResourceType != resourceTopic {
			err = fmt.Errorf("%w: only topic configs can be altered", kerr.InvalidRequest)
		} else {
			set := map[string]string{}
			for _, c := range res.Configs {
				if c.Value != nil {
					set[c.Name] = *c.Value
				}
			}
			err = s.log.AlterConfigs(ctx, res.ResourceName, set, nil, true, r.ValidateOnly)
		}
		rr.ErrorCode, rr.ErrorMessage = s.errCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}
