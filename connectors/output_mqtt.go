package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/eclipse/paho.golang/paho"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// MQTTOutputName is the samsa_mqtt output: publishing to an MQTT broker.
const MQTTOutputName = "samsa_mqtt"

// YAML fields of the samsa_mqtt output besides those it shares with the
// input (urls, qos, client_id, username, password, keep_alive,
// max_in_flight).
const (
	mqttOutFieldTopic  = "topic"
	mqttOutFieldRetain = "retain"
)

func mqttOutputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Publishes messages to an MQTT 5 broker, such as commands to devices; a message is acknowledged once the broker acknowledged it.").
		Description(`
Each message is published to the topic `+"`topic`"+` interpolates for it, with the message content as
payload. With `+"`qos: 1`"+` (the default) a batch is acknowledged once the broker sent a PUBACK for
every message in it; a failed batch is published again, whole, so a device may get a command
twice (at least once). Messages of one batch for the same topic are published one after another,
in order; different topics are published in parallel, up to `+"`max_in_flight`"+` at once; batches
go one at a time, so each topic receives its messages in order.

In a pipeline sink the records come from the topic with their key in `+"`kafka_key`"+` metadata:
`+"`topic: devices/${! meta(\"kafka_key\") }/commands`"+` sends each device its own commands.

The connection is a clean session: nothing is left at the broker when it closes.`).
		Fields(
			service.NewStringListField(mqttFieldURLs).
				Description("Brokers to connect to, tried in order: `tcp://host:port` (or `mqtt://`), `tls://host:port` (or `ssl://`, `mqtts://`) with the system's roots.").
				Example([]string{"tcp://127.0.0.1:1883"}),
			service.NewInterpolatedStringField(mqttOutFieldTopic).
				Description("The topic to publish each message to. A message whose topic does not interpolate fails its batch.").
				Example(`devices/${! meta("kafka_key") }/commands`),
			service.NewIntField(mqttFieldQoS).
				Description("The QoS to publish with: 0, 1 or 2.").
				Default(1),
			service.NewBoolField(mqttOutFieldRetain).
				Description("Publish retained messages: the broker keeps the last one of each topic for subscribers to come.").
				Default(false),
			service.NewStringField(mqttFieldClientID).
				Description("The MQTT client id. Empty: the broker assigns one.").
				Default(""),
			service.NewStringField(mqttFieldUsername).Description("User name to connect with.").Default("").Advanced(),
			service.NewStringField(mqttFieldPassword).Description("Password to connect with.").Default("").Secret().Advanced(),
			service.NewDurationField(mqttFieldKeepAlive).
				Description("The MQTT keep alive: a silent connection is checked with a ping this often.").
				Default("30s").Advanced(),
			service.NewIntField(mqttFieldMaxInFlight).
				Description("Topics of a batch published in parallel.").
				Default(64).Advanced(),
			service.NewBatchPolicyField("batching"),
		).
		Example("Commands to devices", "Send each device the records of the commands topic keyed by its id.", `
output:
  samsa_mqtt:
    urls: [ tcp://127.0.0.1:1883 ]
    topic: devices/${! meta("kafka_key") }/commands
    qos: 1
`)
}

// mqttOutput is the samsa_mqtt output. Benthos calls WriteBatch one at a
// time; paho's error callback and Close come from other goroutines.
type mqttOutput struct {
	logger    *slog.Logger
	urls      []string
	topic     *service.InterpolatedString
	qos       byte
	retain    bool
	clientID  string
	username  string
	password  string
	keepAlive uint16
	parallel  int

	mu struct {
		sync.Mutex
		client *paho.Client // nil: not connected
		gen    uint64
	}
}

func newMQTTOutput(conf *service.ParsedConfig, deps Deps) (*mqttOutput, service.BatchPolicy, error) {
	o := &mqttOutput{}
	var policy service.BatchPolicy
	var err error
	if o.urls, err = mqttURLs(conf); err != nil {
		return nil, policy, err
	}
	if o.topic, err = conf.FieldInterpolatedString(mqttOutFieldTopic); err != nil {
		return nil, policy, err
	}
	qos, err := conf.FieldInt(mqttFieldQoS)
	if err != nil {
		return nil, policy, err
	}
	if qos < 0 || qos > 2 {
		return nil, policy, fmt.Errorf("%s: %d: must be 0, 1 or 2", mqttFieldQoS, qos)
	}
	o.qos = byte(qos)
	if o.retain, err = conf.FieldBool(mqttOutFieldRetain); err != nil {
		return nil, policy, err
	}
	if o.clientID, err = conf.FieldString(mqttFieldClientID); err != nil {
		return nil, policy, err
	}
	if o.username, o.password, o.keepAlive, err = mqttCredentials(conf); err != nil {
		return nil, policy, err
	}
	if o.parallel, err = conf.FieldInt(mqttFieldMaxInFlight); err != nil {
		return nil, policy, err
	}
	if o.parallel < 1 {
		return nil, policy, fmt.Errorf("%s: must be at least 1", mqttFieldMaxInFlight)
	}
	if policy, err = conf.FieldBatchPolicy("batching"); err != nil {
		return nil, policy, err
	}
	o.logger = deps.Logger.With("output", MQTTOutputName)
	return o, policy, nil
}

// Connect connects to the first broker that answers, with a clean session.
func (o *mqttOutput) Connect(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.mu.client != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, mqttConnectTimeout)
	defer cancel()
	conn, addr, err := mqttDial(ctx, o.urls)
	if err != nil {
		return err
	}
	o.mu.gen++
	gen := o.mu.gen
	c := paho.NewClient(paho.ClientConfig{
		Conn:          conn,
		OnClientError: func(err error) { o.lost(gen, err) },
		OnServerDisconnect: func(d *paho.Disconnect) {
			o.lost(gen, fmt.Errorf("the broker disconnected (reason %#x)", d.ReasonCode))
		},
	})
	if _, err := c.Connect(ctx, &paho.Connect{
		ClientID: o.clientID, CleanStart: true, KeepAlive: o.keepAlive,
		Username: o.username, UsernameFlag: o.username != "",
		Password: []byte(o.password), PasswordFlag: o.password != "",
	}); err != nil {
		_ = conn.Close()
		return fmt.Errorf("mqtt: connecting to %s: %w", addr, err)
	}
	o.mu.client = c
	o.logger.Info("mqtt sink connected", "broker", addr)
	return nil
}

func (o *mqttOutput) lost(gen uint64, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if gen == o.mu.gen && o.mu.client != nil {
		o.mu.client = nil
		o.logger.Warn("mqtt connection lost", "err", err)
	}
}

// WriteBatch publishes the messages, each topic's in order, and returns
// once the broker acknowledged all of them.
func (o *mqttOutput) WriteBatch(ctx context.Context, msgs service.MessageBatch) error {
	o.mu.Lock()
	c, gen := o.mu.client, o.mu.gen
	o.mu.Unlock()
	if c == nil {
		return service.ErrNotConnected
	}
	topics := msgs.InterpolationExecutor(o.topic)
	var order []string
	byTopic := map[string][]int{}
	for i := range msgs {
		t, err := topics.TryString(i)
		if err != nil {
			return fmt.Errorf("%s: %w", mqttOutFieldTopic, err)
		}
		if t == "" || mqttCheckTopic(t) != nil {
			return fmt.Errorf("%s: %q is not a topic to publish to", mqttOutFieldTopic, t)
		}
		if _, ok := byTopic[t]; !ok {
			order = append(order, t)
		}
		byTopic[t] = append(byTopic[t], i)
	}
	errs := make([]error, len(order))
	sem := make(chan struct{}, o.parallel)
	var wg sync.WaitGroup
	for n, t := range order {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			for _, i := range byTopic[t] {
				payload, err := msgs[i].AsBytes()
				if err == nil {
					_, err = c.Publish(ctx, &paho.Publish{Topic: t, QoS: o.qos, Retain: o.retain, Payload: payload})
				}
				if err != nil {
					errs[n] = fmt.Errorf("publishing to %s: %w", t, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	err := errors.Join(errs...)
	if err == nil {
		return nil
	}
	o.mu.Lock()
	gone := o.mu.gen != gen || o.mu.client == nil
	o.mu.Unlock()
	if gone && ctx.Err() == nil {
		return service.ErrNotConnected // published again after reconnecting
	}
	return err
}

// Close disconnects.
func (o *mqttOutput) Close(context.Context) error {
	o.mu.Lock()
	c := o.mu.client
	o.mu.client = nil
	o.mu.gen++
	o.mu.Unlock()
	if c != nil {
		return c.Disconnect(&paho.Disconnect{ReasonCode: 0})
	}
	return nil
}

// mqttCheckTopic checks a topic to publish to: no wildcards.
func mqttCheckTopic(t string) error {
	for i := 0; i < len(t); i++ {
		if t[i] == '+' || t[i] == '#' {
			return errors.New("wildcards are for subscriptions")
		}
	}
	return nil
}
