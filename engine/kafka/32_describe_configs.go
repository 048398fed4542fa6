package kafka

import (
	"context"
	"fmt"
	"strconv"

	"github.com/samsa-io/samsa/log/meta"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs v0–3: a topic's every config (meta's one table), set
// values as DYNAMIC_TOPIC_CONFIG and the rest as DEFAULT_CONFIG, with
// types and documentation (v3); a broker's settings, read-only.

const (
	resourceTopic  = 2
	resourceBroker = 4

	sourceTopic   = 1 // DYNAMIC_TOPIC_CONFIG
	sourceStatic  = 4 // STATIC_BROKER_CONFIG
	sourceDefault = 5 // DEFAULT_CONFIG
)

func (s *Server) handleDescribeConfigs(ctx context.Context, c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DescribeConfigsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, res := range r.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = res.ResourceType, res.ResourceName
		want := map[string]bool{}
		for _, n := range res.ConfigNames {
			want[n] = true
		}
		var entries []kmsg.DescribeConfigsResponseResourceConfig
		switch res.ResourceType {
		case resourceTopic:
			t, ok := s.log.Topic(res.ResourceName)
			if !ok {
				rr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				break
			}
			for _, e := range meta.DescribeConfigs(t.Configs) {
				entries = append(entries, describeEntry(r, e.Name, e.Value, e.Default, sourceTopic, int8(e.Type), e.Doc))
			}
		case resourceBroker:
			for _, e := range s.brokerConfigs() {
				entries = append(entries, describeEntry(r, e[0], e[1], false, sourceStatic, 2, e[2]))
			}
		default:
			rr.ErrorCode = kerr.InvalidRequest.Code
			rr.ErrorMessage = kmsg.StringPtr(fmt.Sprintf("resource type %d has no configs here", res.ResourceType))
		}
		for _, e := range entries {
			if len(want) == 0 || want[e.Name] {
				rr.Configs = append(rr.Configs, e)
			}
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}

func describeEntry(r *kmsg.DescribeConfigsRequest, name, value string, isDefault bool, source int8, typ int8, doc string) kmsg.DescribeConfigsResponseResourceConfig {
	e := kmsg.NewDescribeConfigsResponseResourceConfig()
	e.Name, e.Value = name, kmsg.StringPtr(value)
	e.IsDefault = isDefault
	e.Source = kmsg.ConfigSource(source)
	if isDefault {
		e.Source = sourceDefault
	}
	e.ReadOnly = e.Source == sourceStatic
	if r.Version >= 3 {
		e.ConfigType = kmsg.ConfigType(typ)
		if r.IncludeDocumentation {
			e.Documentation = kmsg.StringPtr(doc)
		}
	}
	if r.IncludeSynonyms && r.Version >= 1 {
		syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		syn.Name, syn.Value, syn.Source = name, e.Value, e.Source
		e.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{syn}
	}
	return e
}

// brokerConfigs are this node's settings as Kafka names them:
// name, value, documentation.
func (s *Server) brokerConfigs() [][3]string {
	return [][3]string{
		{"broker.id", strconv.Itoa(int(s.cfg.NodeID)), "The node id."},
		{"advertised.listeners", "PLAINTEXT://" + s.cfg.AdvertisedAddr, "Where clients reach this node."},
		{"auto.create.topics.enable", strconv.FormatBool(s.cfg.AutoCreateTopics), "Create unknown topics that Metadata asks for."},
		{"num.partitions", strconv.Itoa(int(s.cfg.DefaultPartitions)), "Partitions of auto-created topics."},
		{"default.replication.factor", strconv.Itoa(int(s.cfg.DefaultReplicationFactor)), "Replication factor of auto-created topics."},
		{"socket.request.max.bytes", strconv.Itoa(int(s.cfg.MaxRequestBytes)), "The largest request accepted."},
		{"group.initial.rebalance.delay.ms", strconv.FormatInt(s.cfg.InitialRebalanceDelay.Milliseconds(), 10), "How long a new group waits for more members before its first rebalance."},
	}
}
