package connectors

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session/state"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/log/replog"
)

// MQTTInputName is the samsa_mqtt input: devices over MQTT 5.
const MQTTInputName = "samsa_mqtt"

// YAML fields of the samsa_mqtt input (and, where they share a name, of
// the samsa_mqtt output).
const (
	mqttFieldURLs          = "urls"
	mqttFieldTopics        = "topics"
	mqttFieldQoS           = "qos"
	mqttFieldClientID      = "client_id"
	mqttFieldUsername      = "username"
	mqttFieldPassword      = "password"
	mqttFieldSessionExpiry = "session_expiry"
	mqttFieldKeepAlive     = "keep_alive"
	mqttFieldKeyLevel      = "key_level"
	mqttFieldKey           = "key"
	mqttFieldDedupeID      = "dedupe_id"
	mqttFieldDedupeWindow  = "dedupe_window"
	mqttFieldBatchSize     = "batch_size"
	mqttFieldBatchPeriod   = "batch_period"
	mqttFieldMaxInFlight   = "max_in_flight"
	mqttFieldSourceID      = "source_id"
)

// Metadata the samsa_mqtt input sets on every message, besides
// samsa_source, samsa_position and samsa_ticket. The MQTT 5 user
// properties of a message become string metadata too (except keys starting
// samsa_ or kafka_), so the topic output writes them as headers.
const (
	MetaMQTTTopic     = "mqtt_topic"     // string: the topic the message was published to
	MetaMQTTQoS       = "mqtt_qos"       // int: the QoS it was delivered with
	MetaMQTTRetained  = "mqtt_retained"  // bool: a retained message
	MetaMQTTDuplicate = "mqtt_duplicate" // bool: the broker marked it as sent before
)

// mqttAckInterval is how often paho sends the PUBACKs released in order.
const mqttAckInterval = 5 * time.Millisecond

// mqttConnectTimeout bounds dialling and the CONNECT/CONNACK exchange.
const mqttConnectTimeout = 10 * time.Second

// mqttRedeliveryWait bounds how long, after a restart, the input waits for
// the broker to send again the messages that were in flight before it
// emits anything (see mqttInput.holdLocked).
const mqttRedeliveryWait = 5 * time.Second

// mqttMaxReceive caps the MQTT receive maximum (messages the broker sends
// before it waits for a PUBACK), which bounds the checkpoint.
const mqttMaxReceive = 16384

// mqttPositionLen is the size of the input's positions: a counter,
// big-endian.
const mqttPositionLen = 8

func mqttInputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Receives messages from devices over MQTT 5 into a pipeline: acknowledged to the broker only once stored in Samsa, duplicates dropped across restarts.").
		Description(`
The input subscribes to `+"`topics`"+` (filters with `+"`+`"+` and `+"`#`"+` wildcards) with a persistent session:
clean start off and a `+"`session_expiry`"+`, under a fixed `+"`client_id`"+`, so that the broker keeps the
messages that arrive while Samsa is stopped or disconnected and sends them when it is back. Each
message becomes a record: the payload is the content, `+"`samsa_key`"+` metadata is the device it comes
from (the topic level `+"`key_level`"+`, or the interpolation `+"`key`"+`), `+"`mqtt_topic`"+`, `+"`mqtt_qos`"+`,
`+"`mqtt_retained`"+` and `+"`mqtt_duplicate`"+` describe it, and its MQTT 5 user properties become string
metadata (so headers in the topic). Key the topic with `+"`key: '${! meta(\"samsa_key\") }'`"+` to keep
each device's messages in order in one partition.

**No loss (QoS 1).** A message is acknowledged to the broker (PUBACK, in the order the messages
arrived, as MQTT requires) only after its record is committed in Samsa's log. A batch that fails
is never acknowledged: the input keeps its messages and sends them again, and nothing after them
is written ahead of them (metadata `+"`samsa_ticket`"+`). If Samsa stops or the connection drops, the
broker sends every unacknowledged message again. This holds as long as the broker keeps the
session and its queue: with Mosquitto set `+"`persistence true`"+` (so that a broker restart keeps
them) and a `+"`max_queued_messages`"+` large enough for the messages that arrive while the input
is away (Mosquitto's default, 1000 per client, drops the rest). With `+"`qos: 0`"+` messages are
received at most once.

**No duplicates.** Each record carries `+"`samsa_position`"+`: 8 bytes big-endian, a counter that
follows the clock in nanoseconds where the clock is ahead, stored in the checkpoint
`+"`source/<source_id>`"+` before it is used, so it increases across restarts. Before a batch goes
out, the checkpoint also stores, for each message given a position and not yet acknowledged to
the broker, the position and an identity: the message's `+"`dedupe_id`"+` if it has one, else a
hash of its packet identifier, topic and payload (a broker sends an unacknowledged message again
with its original packet identifier). A message leaves the checkpoint only when its PUBACK can
go at once (every message that arrived before it is stored too), and the PUBACK follows the
store within milliseconds. After a restart the input waits (up to 5s) for the broker to send the
checkpoint's messages again, emits them first with their old positions, and the topic drops
those it already holds; while it runs, a message sent again after a reconnect is matched to the
one it holds.

A message acknowledged whose PUBACK the broker may not have received (the node died, the
connection dropped) stays in the checkpoint too, by packet identifier and the hash of topic and
payload, until the broker shows it read the PUBACK: the input sends a request (an UNSUBSCRIBE of
a filter it never subscribed to) after the PUBACKs and the broker answers it after reading them,
in order; the messages of a connection that went are dropped once the next connection delivers a
new message. The broker sends such a message again with the same packet identifier and the DUP
flag (MQTT §4.4); one that matches is dropped and acknowledged. An identifier the broker gives a
new message (without DUP) drops the entries under it. (A broker that hands an identifier out
again at once, which Mosquitto does not, could deliver a new message with the topic, payload and
identifier of one just acknowledged; if the node died before the broker's answer, its redelivery
would be taken for the old one and dropped. Messages that repeat exactly want a `+"`dedupe_id`"+`.)
So a record is stored twice only when the
device published the message twice (MQTT's QoS 1 from device to broker is at least once), and
then the message has no `+"`dedupe_id`"+`: a message whose id was seen among the last
`+"`dedupe_window`"+` messages of its device, the messages held, or (across restarts) the messages
acknowledged last (as many as the broker may have in flight) is dropped and acknowledged. Ids
are compared as 64-bit hashes of device and id; they must be unique per device.

Retained messages are delivered when the subscription is new, not again on each reconnect.`).
		Fields(
			service.NewStringListField(mqttFieldURLs).
				Description("Brokers to connect to, tried in order: `tcp://host:port` (or `mqtt://`), `tls://host:port` (or `ssl://`, `mqtts://`) with the system's roots. The port defaults to 1883, 8883 with TLS.").
				Example([]string{"tcp://127.0.0.1:1883"}),
			service.NewStringListField(mqttFieldTopics).
				Description("Topic filters to subscribe to; `+` matches one level, `#` the rest.").
				Example([]string{"devices/+/readings"}),
			service.NewIntField(mqttFieldQoS).
				Description("The QoS of the subscriptions: 1 (at least once from the broker, acknowledged after commit) or 0 (at most once).").
				Default(1),
			service.NewStringField(mqttFieldClientID).
				Description("The MQTT client id, which names the session the broker keeps. Keep it stable and unique: another client with it takes the session over. Default: `samsa-` followed by `source_id`.").
				Default(""),
			service.NewStringField(mqttFieldUsername).Description("User name to connect with.").Default("").Advanced(),
			service.NewStringField(mqttFieldPassword).Description("Password to connect with.").Default("").Secret().Advanced(),
			service.NewDurationField(mqttFieldSessionExpiry).
				Description("How long the broker keeps the session (subscriptions and queued messages) after the input disconnects; at most about 136 years. `0s` ends the session with the connection: messages sent meanwhile are lost.").
				Default("24h"),
			service.NewDurationField(mqttFieldKeepAlive).
				Description("The MQTT keep alive: a silent connection is checked with a ping this often.").
				Default("30s").Advanced(),
			service.NewIntField(mqttFieldKeyLevel).
				Description("The topic level (0 is the first) whose value is the device, in `samsa_key`: 1 for `devices/<id>/readings`. A negative level counts from the end (-1 is the last). A topic without that level gives the whole topic.").
				Default(1),
			service.NewInterpolatedStringField(mqttFieldKey).
				Description("The device, as an interpolation of the message (content, `mqtt_topic`, user properties), instead of `key_level`. A key that fails to interpolate is empty.").
				Example(`${! json("device_id") }`).
				Optional(),
			service.NewInterpolatedStringField(mqttFieldDedupeID).
				Description("The message id a device gives, as an interpolation: a user property (`${! meta(\"msg_id\") }`) or a JSON field (`${! json(\"id\") }`). Messages whose id was seen (see above) are dropped; an id that fails, is empty or is `null` (a missing property or field) means none.").
				Example(`${! meta("msg_id") }`).
				Optional(),
			service.NewIntField(mqttFieldDedupeWindow).
				Description("How many recent ids of each device are remembered (in memory) for `dedupe_id`.").
				Default(64).Advanced(),
			service.NewStringField(mqttFieldSourceID).
				Description("Identifies the source: the key of its checkpoint and the id the partitions fence duplicates by. Keep it stable across restarts and unique per source."),
			service.NewIntField(mqttFieldBatchSize).
				Description("Messages per batch at most.").
				Default(500).Advanced(),
			service.NewDurationField(mqttFieldBatchPeriod).
				Description("How long a batch waits for more messages after its first.").
				Default("10ms").Advanced(),
			service.NewIntField(mqttFieldMaxInFlight).
				Description("Batches in flight before the oldest is stored. The broker may send `batch_size` × `max_in_flight` messages (at most 16384) before it waits for acknowledgements.").
				Default(4).Advanced(),
		).
		Example("Device readings", "Readings of every device, keyed by the device id in the topic, with a message id in a user property.", `
input:
  samsa_mqtt:
    urls: [ tcp://127.0.0.1:1883 ]
    topics: [ devices/+/readings ]
    key_level: 1
    dedupe_id: '${! meta("msg_id") }'
    source_id: readings-mqtt
`)
}

// mqttEntry is a message received and not yet acknowledged to the broker,
// in the input's deque in arrival order. Fields are under mqttInput.mu.
type mqttEntry struct {
	seq       uint64           // its place in the deque
	msg       *service.Message // the message, without position and ticket
	dev       string           // samsa_key
	key       uint64           // its identity for matching; 0: none (QoS 0 without an id)
	hasID     bool             // key is the hash of its dedupe id
	pos       uint64           // 0: no position yet
	gen       uint64           // the connection that delivered it last
	pub       *paho.Publish    // as that connection delivered it
	ackFailed uint64           // the connection on which acknowledging it failed
	noAck     bool             // nothing to acknowledge: QoS 0, or the broker's session is gone
	committed bool             // its record is stored
	removed   bool             // acknowledged; out of the deque
	ringed    bool             // its id is in recent
	rseq      uint64           // when its connection delivered it: paho sends PUBACKs in this order
	ready     bool             // scratch for snapshotLocked
}

// mqttInput is the samsa_mqtt input. ReadBatch runs one call at a time;
// paho's callbacks, batch acknowledgements, the checkpoint loop and Close
// come from other goroutines and meet under mu.
//
// An entry goes: received → given a position (ReadBatch, in deque order, so
// positions increase along the deque) → stored in the checkpoint with its
// identity → emitted → committed (its batch acknowledged) → removed from the
// checkpoint, once every entry its connection delivered before it is
// committed too → acknowledged to the broker (paho sends PUBACKs in the
// order the messages arrived). Removing before acknowledging means the
// checkpoint never holds a message the broker may have forgotten, whose
// packet identifier it may have reused; removing only what can be
// acknowledged at once keeps the time between the two short.
type mqttInput struct {
	log       *replog.Log
	logger    *slog.Logger
	sourceID  string
	srcMeta   any
	ckKey     string
	urls      []string
	topics    []string
	qos       byte
	clientID  string
	username  string
	password  string
	expiry    uint32 // seconds
	keepAlive uint16 // seconds
	keyLevel  int
	key       *service.InterpolatedString // nil: keyLevel
	dedupeID  *service.InterpolatedString // nil: no ids
	window    int
	batchSize int
	period    time.Duration
	inFlight  int
	recvMax   uint16
	fl        inflight[struct{}] // no position: entries are marked committed one by one

	arrived   chan struct{} // a message arrived, a connection went, or a batch failed
	storeWake chan struct{} // something to store
	done      chan struct{} // closed by Close
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	close1    sync.Once

	mu struct {
		sync.Mutex
		loaded     bool         // the checkpoint was read (and the checkpoint loop started)
		everUp     bool         // a connection succeeded since the input started
		client     *paho.Client // nil: not connected
		gen        uint64       // the current connection
		ents       []*mqttEntry
		base       uint64 // seq of ents[0]
		emit       uint64 // seq of the next entry to emit
		index      map[uint64]*mqttEntry
		next       uint64 // the next position
		holding    bool   // waiting for redeliveries after a restart
		holdUntil  time.Time
		expect     map[uint64]uint64 // key → position of the messages in flight before the restart
		windows    map[string]*mqttWindow
		recent     mqttRing
		pubAcks    mqttPubAcks       // messages acknowledged without a dedupe id, not known to be received
		written    map[uint16]uint64 // packet id → writes, for PUBACKs written on the current connection
		writes     uint64            // PUBACKs written on the current connection
		freshGen   uint64            // the last connection that delivered a new (not DUP) message
		seq        uint64            // bumped by every change the checkpoint must see
		storedSeq  uint64            // the seq the last stored checkpoint saw
		storedNext uint64            // next in the last stored checkpoint: positions below it are stored
		storeErr   error             // why the last store failed
		stored     chan struct{}     // closed (and replaced) after each store
		dropped    uint64            // QoS 0 messages dropped
		superseded bool              // another instance holds the session (see supersede)
		rseq       uint64            // the last mqttEntry.rseq given
	}

	ckMu       sync.Mutex // one store at a time
	lastStored []byte     // under ckMu
}

func newMQTTInput(conf *service.ParsedConfig, deps Deps) (*mqttInput, error) {
	in := &mqttInput{
		log: deps.Log, arrived: make(chan struct{}, 1),
		storeWake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	var err error
	if in.urls, err = mqttURLs(conf); err != nil {
		return nil, err
	}
	if in.topics, err = conf.FieldStringList(mqttFieldTopics); err != nil {
		return nil, err
	}
	if len(in.topics) == 0 {
		return nil, fmt.Errorf("%s: at least one topic filter is required", mqttFieldTopics)
	}
	for _, t := range in.topics {
		if err := mqttCheckFilter(t); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", mqttFieldTopics, t, err)
		}
	}
	qos, err := conf.FieldInt(mqttFieldQoS)
	if err != nil {
		return nil, err
	}
	if qos != 0 && qos != 1 {
		return nil, fmt.Errorf("%s: %d: must be 0 or 1", mqttFieldQoS, qos)
	}
	in.qos = byte(qos)
	if in.sourceID, err = conf.FieldString(mqttFieldSourceID); err != nil {
		return nil, err
	}
	if in.sourceID == "" {
		return nil, fmt.Errorf("%s: required", mqttFieldSourceID)
	}
	if in.clientID, err = conf.FieldString(mqttFieldClientID); err != nil {
		return nil, err
	}
	if in.clientID == "" {
		in.clientID = "samsa-" + in.sourceID
	}
	if in.username, in.password, in.keepAlive, err = mqttCredentials(conf); err != nil {
		return nil, err
	}
	expiry, err := conf.FieldDuration(mqttFieldSessionExpiry)
	if err != nil {
		return nil, err
	}
	if expiry < 0 || expiry.Seconds() > math.MaxUint32 {
		return nil, fmt.Errorf("%s: %v: must be between 0s and %ds", mqttFieldSessionExpiry, expiry, uint32(math.MaxUint32))
	}
	in.expiry = uint32(expiry / time.Second)
	if in.keyLevel, err = conf.FieldInt(mqttFieldKeyLevel); err != nil {
		return nil, err
	}
	if conf.Contains(mqttFieldKey) {
		if in.key, err = conf.FieldInterpolatedString(mqttFieldKey); err != nil {
			return nil, err
		}
	}
	if conf.Contains(mqttFieldDedupeID) {
		if in.dedupeID, err = conf.FieldInterpolatedString(mqttFieldDedupeID); err != nil {
			return nil, err
		}
	}
	if in.window, err = conf.FieldInt(mqttFieldDedupeWindow); err != nil {
		return nil, err
	}
	if in.batchSize, err = conf.FieldInt(mqttFieldBatchSize); err != nil {
		return nil, err
	}
	if in.period, err = conf.FieldDuration(mqttFieldBatchPeriod); err != nil {
		return nil, err
	}
	if in.inFlight, err = conf.FieldInt(mqttFieldMaxInFlight); err != nil {
		return nil, err
	}
	switch {
	case in.window < 1:
		return nil, fmt.Errorf("%s: must be at least 1", mqttFieldDedupeWindow)
	case in.batchSize < 1:
		return nil, fmt.Errorf("%s: must be at least 1", mqttFieldBatchSize)
	case in.period < 0:
		return nil, fmt.Errorf("%s: must not be negative", mqttFieldBatchPeriod)
	case in.inFlight < 1:
		return nil, fmt.Errorf("%s: must be at least 1", mqttFieldMaxInFlight)
	}
	in.recvMax = uint16(min(in.batchSize*in.inFlight, mqttMaxReceive))
	in.fl.init(&in.mu.Mutex, in.arrived, in.done)
	in.srcMeta = in.sourceID
	in.ckKey = "source/" + in.sourceID
	in.logger = deps.Logger.With("input", MQTTInputName, "source", in.sourceID)
	in.ctx, in.cancel = context.WithCancel(context.Background())
	in.mu.index = map[uint64]*mqttEntry{}
	in.mu.windows = map[string]*mqttWindow{}
	in.mu.recent = newMQTTRing(int(in.recvMax))
	in.mu.pubAcks = newMQTTPubAcks(math.MaxUint16)
	in.mu.next = 1
	in.mu.stored = make(chan struct{})
	return in, nil
}

// Connect connects to the first broker that answers, resumes the session,
// reads the checkpoint (the first time) and subscribes.
func (in *mqttInput) Connect(ctx context.Context) error {
	in.mu.Lock()
	up, superseded := in.mu.client != nil, in.mu.superseded
	in.mu.Unlock()
	if up {
		return nil
	}
	if superseded {
		return fmt.Errorf("mqtt: another client took the session %q over (two sources with one %s?)", in.clientID, mqttFieldClientID)
	}
	ctx, cancel := context.WithTimeout(ctx, mqttConnectTimeout)
	defer cancel()
	conn, addr, err := mqttDial(ctx, in.urls)
	if err != nil {
		return err
	}
	in.mu.Lock()
	in.mu.gen++
	gen := in.mu.gen
	in.mu.written, in.mu.writes = map[uint16]uint64{}, 0
	in.mu.Unlock()
	// Messages wait for ready: until the CONNACK is seen, nobody knows
	// whether they belong to the session the input held before.
	ready := make(chan struct{})
	c := paho.NewClient(paho.ClientConfig{
		Conn:                       conn,
		Session:                    mqttAckSession{state.NewInMemory(), func(pid uint16) { in.written(gen, pid) }},
		EnableManualAcknowledgment: true,
		SendAcksInterval:           mqttAckInterval,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			select {
			case <-ready:
			case <-in.done:
				return true, nil
			}
			in.receive(gen, pr.Client, pr.Packet)
			return true, nil
		}},
		OnClientError: func(err error) { in.lost(gen, err) },
		OnServerDisconnect: func(d *paho.Disconnect) {
			if d.ReasonCode == mqttSessionTakenOver {
				in.supersede()
			}
			in.lost(gen, fmt.Errorf("the broker disconnected (reason %#x)", d.ReasonCode))
		},
	})
	expiry, recvMax := in.expiry, in.recvMax
	ca, err := c.Connect(ctx, &paho.Connect{
		ClientID: in.clientID, CleanStart: false, KeepAlive: in.keepAlive,
		Username: in.username, UsernameFlag: in.username != "",
		Password: []byte(in.password), PasswordFlag: in.password != "",
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry, ReceiveMaximum: &recvMax},
	})
	if err != nil {
		close(ready)
		_ = conn.Close()
		return fmt.Errorf("mqtt: connecting to %s as %q: %w", addr, in.clientID, err)
	}
	// The checkpoint is read once this connection holds the session: an
	// input it took the session from (a stream still stopping) stores
	// nothing more (see supersede).
	if err := in.load(); err != nil {
		close(ready)
		_ = c.Disconnect(&paho.Disconnect{})
		return err
	}
	in.mu.Lock()
	if !ca.SessionPresent {
		in.sessionGoneLocked()
	}
	if !in.mu.everUp {
		in.mu.everUp = true
		if len(in.mu.expect) > 0 {
			in.mu.holding = true
			in.mu.holdUntil = time.Now().Add(mqttRedeliveryWait)
		}
	}
	in.mu.client = c
	in.mu.Unlock()
	close(ready)
	subs := make([]paho.SubscribeOptions, len(in.topics))
	for i, t := range in.topics {
		// Retained messages only when the subscription is new: not again
		// on every reconnect of a persistent session.
		subs[i] = paho.SubscribeOptions{Topic: t, QoS: in.qos, RetainHandling: 1}
	}
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
		_ = c.Disconnect(&paho.Disconnect{})
		in.lost(gen, err)
		return fmt.Errorf("mqtt: subscribing to %s: %w", strings.Join(in.topics, ", "), err)
	}
	in.logger.Info("mqtt source connected", "broker", addr, "client_id", in.clientID, "session_present", ca.SessionPresent)
	return nil
}

// load reads the checkpoint and starts the checkpoint loop, the first time.
func (in *mqttInput) load() error {
	in.mu.Lock()
	loaded := in.mu.loaded
	in.mu.Unlock()
	if loaded {
		return nil
	}
	// Nothing else stores before loaded is set: lastStored is free.
	b, ok := in.log.Checkpoint(in.ckKey)
	var ck mqttCheckpoint
	if ok {
		var err error
		if ck, err = decodeMQTTCheckpoint(b); err != nil {
			return fmt.Errorf("%s: %w", in.ckKey, err)
		}
		in.lastStored = b
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.mu.next = max(ck.next, 1)
	in.mu.storedNext = in.mu.next
	if len(ck.inflight) > 0 {
		in.mu.expect = make(map[uint64]uint64, len(ck.inflight))
		for _, f := range ck.inflight {
			in.mu.expect[f.key] = f.pos
		}
	}
	for _, h := range ck.recent {
		in.mu.recent.push(h)
	}
	for _, a := range ck.pubAcks {
		in.mu.pubAcks.push(a)
	}
	in.mu.loaded = true
	in.logger.Debug("mqtt checkpoint loaded", "found", ok, "next", ck.next, "in_flight", len(ck.inflight), "recent", len(ck.recent))
	in.wg.Add(2)
	go in.storeLoop()
	go in.confirmLoop()
	return nil
}

// sessionGoneLocked handles a broker that kept no session for the input:
// what it had delivered will not come again, so it needs no PUBACK and
// cannot be matched by packet identifier any more.
func (in *mqttInput) sessionGoneLocked() {
	if n := len(in.mu.expect); n > 0 {
		in.logger.Warn("the broker kept no session: messages in flight before the restart that were not stored are lost", "messages", n)
		in.mu.expect = nil
	}
	in.mu.pubAcks.reset()
	for _, e := range in.mu.ents {
		if e.removed || e.noAck {
			continue
		}
		e.noAck = true
		if !e.hasID && in.mu.index[e.key] == e {
			delete(in.mu.index, e.key)
		}
	}
	in.mu.seq++
	signal(in.storeWake)
}

// lost handles the end of connection gen.
func (in *mqttInput) lost(gen uint64, err error) {
	in.mu.Lock()
	if gen == in.mu.gen && in.mu.client != nil {
		in.mu.client = nil
		select {
		case <-in.done:
		default:
			in.logger.Warn("mqtt connection lost", "err", err)
		}
	}
	in.mu.Unlock()
	signal(in.arrived)
}

// mqttSessionTakenOver is the DISCONNECT reason a broker gives a client
// whose session another connection with its client id took.
const mqttSessionTakenOver = 0x8e

// supersede stops the input from storing checkpoints: another instance
// (the next stream of the pipeline, or another source with the same
// client_id) holds the session and the checkpoint now.
func (in *mqttInput) supersede() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.mu.superseded {
		in.mu.superseded = true
		in.logger.Warn("another client took the mqtt session over; this source stores no more checkpoints", "client_id", in.clientID)
	}
}

// receive takes a message delivered on connection gen.
func (in *mqttInput) receive(gen uint64, c *paho.Client, p *paho.Publish) {
	msg, dev, key, hasID := in.prepare(p)
	in.mu.Lock()
	defer in.mu.Unlock()
	if gen != in.mu.gen {
		return // a late message of a lost connection: the broker sends it again
	}
	if p.QoS == 0 && len(in.mu.ents) >= in.maxEntries() {
		// Nothing limits QoS 0 messages but the input keeping up; they
		// are at most once anyway. (paho's callback must not block: its
		// shutdown waits for it.)
		in.mu.dropped++
		if in.mu.dropped&(in.mu.dropped-1) == 0 {
			in.logger.Warn("QoS 0 messages dropped: the pipeline does not keep up", "dropped", in.mu.dropped)
		}
		return
	}
	if p.QoS > 0 {
		delete(in.mu.written, p.PacketID) // the identifier is another message's now
	}
	if p.QoS > 0 && !p.Duplicate() && in.mu.freshGen != gen {
		in.mu.freshGen = gen
		if in.mu.pubAcks.dropBefore(gen) {
			in.mu.seq++
			signal(in.storeWake)
		}
	}
	if key != 0 {
		if e := in.mu.index[key]; e != nil {
			switch {
			case e.gen != gen:
				// Sent again on a new connection (or session): acknowledge
				// it there.
				e.gen, e.pub, e.noAck = gen, p, p.QoS == 0
				in.mu.rseq++
				e.rseq = in.mu.rseq
				if e.committed {
					in.mu.seq++
					signal(in.storeWake)
				}
			case hasID && e.pub != nil && e.pub.PacketID != p.PacketID:
				in.ackDuplicate(c, p) // the device published it twice
			}
			return
		}
		if pos, ok := in.mu.expect[key]; ok && in.mu.holding {
			// In flight before the restart: it keeps its position.
			delete(in.mu.expect, key)
			in.appendLocked(&mqttEntry{msg: msg, dev: dev, key: key, hasID: hasID, pos: pos, gen: gen, pub: p, noAck: p.QoS == 0})
			signal(in.arrived)
			return
		}
		if !hasID {
			if p.Duplicate() && in.mu.pubAcks.has(key) {
				// Stored and acknowledged before: the broker did not get
				// the PUBACK (see mqttPubAcks).
				in.ackDuplicate(c, p)
				return
			}
			if !p.Duplicate() && in.mu.pubAcks.reused(p.PacketID) {
				in.mu.seq++
				signal(in.storeWake)
			}
		}
	}
	if hasID && in.seenLocked(dev, key) {
		in.ackDuplicate(c, p)
		return
	}
	in.appendLocked(&mqttEntry{msg: msg, dev: dev, key: key, hasID: hasID, gen: gen, pub: p, noAck: p.QoS == 0})
	signal(in.arrived)
}

// ackDuplicate acknowledges a message dropped as a duplicate: paho sends
// the PUBACK after those of the messages that arrived before it.
func (in *mqttInput) ackDuplicate(c *paho.Client, p *paho.Publish) {
	if p.QoS > 0 {
		_ = c.Ack(p)
	}
	in.logger.Debug("duplicate dropped", "topic", p.Topic)
}

func (in *mqttInput) appendLocked(e *mqttEntry) {
	e.seq = in.mu.base + uint64(len(in.mu.ents))
	in.mu.rseq++
	e.rseq = in.mu.rseq
	in.mu.ents = append(in.mu.ents, e)
	if e.key != 0 {
		in.mu.index[e.key] = e
	}
	if e.hasID {
		w := in.mu.windows[e.dev]
		if w == nil {
			w = &mqttWindow{}
			in.mu.windows[e.dev] = w
		}
		w.add(e.key, in.window)
	}
}

// seenLocked reports whether a device's id hash was seen recently.
func (in *mqttInput) seenLocked(dev string, h uint64) bool {
	if w := in.mu.windows[dev]; w != nil && w.has(h) {
		return true
	}
	return in.mu.recent.has(h)
}

// maxEntries bounds the deque for QoS 0 messages. QoS 1 messages are
// bounded by the receive maximum (which a broker may exceed after a
// session resumes, as Mosquitto 2.0 does: they are kept all the same).
func (in *mqttInput) maxEntries() int { return 2*int(in.recvMax) + in.batchSize }

// prepare makes a message of a PUBLISH, with its device and identity.
func (in *mqttInput) prepare(p *paho.Publish) (m *service.Message, dev string, key uint64, hasID bool) {
	m = service.NewMessage(p.Payload)
	if p.Properties != nil {
		for _, u := range p.Properties.User {
			if !strings.HasPrefix(u.Key, "samsa_") && !strings.HasPrefix(u.Key, "kafka_") {
				m.MetaSetMut(u.Key, u.Value)
			}
		}
	}
	m.MetaSetMut(MetaMQTTTopic, p.Topic)
	m.MetaSetMut(MetaMQTTQoS, int(p.QoS))
	m.MetaSetMut(MetaMQTTRetained, p.Retain)
	m.MetaSetMut(MetaMQTTDuplicate, p.Duplicate())
	if in.key != nil {
		dev, _ = in.key.TryString(m)
	} else {
		dev = mqttTopicLevel(p.Topic, in.keyLevel)
	}
	m.MetaSetMut(MetaKey, dev) // the device
	m.MetaSetMut(MetaSource, in.srcMeta)
	if in.dedupeID != nil {
		// A missing property or field interpolates as "null".
		if id, err := in.dedupeID.TryString(m); err == nil && id != "" && id != "null" {
			key, hasID = mqttHashID(dev, id), true
		}
	}
	if !hasID && p.QoS > 0 {
		key = mqttHashPublish(p)
	}
	return m, dev, key, hasID
}

// mqttTopicLevel returns level n of a topic (negative: from the end), or
// the whole topic if it has no such level.
func mqttTopicLevel(topic string, n int) string {
	levels := strings.Split(topic, "/")
	if n < 0 {
		n += len(levels)
	}
	if n < 0 || n >= len(levels) {
		return topic
	}
	return levels[n]
}

// ReadBatch emits the next messages: those of a failed batch again, else
// new ones, up to batch_size, waiting batch_period after the first.
func (in *mqttInput) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	var fillBy time.Time // when the batch being gathered goes out, full or not
	for {
		if err := in.rewindIfFailed(ctx); err != nil {
			return nil, nil, err
		}
		if err := in.fl.waitRoom(ctx, in.inFlight-1); err != nil {
			return nil, nil, err
		}
		in.mu.Lock()
		if in.fl.failedLocked() {
			in.mu.Unlock()
			continue
		}
		if in.mu.holding {
			if len(in.mu.expect) > 0 && time.Now().Before(in.mu.holdUntil) {
				t := time.NewTimer(time.Until(in.mu.holdUntil))
				in.mu.Unlock()
				err := in.waitSignal(ctx, in.arrived, t.C)
				t.Stop()
				if err != nil {
					return nil, nil, err
				}
				continue
			}
			in.endHoldLocked()
		}
		n := in.availableLocked()
		switch {
		case n == 0 && in.mu.client == nil:
			in.mu.Unlock()
			return nil, nil, service.ErrNotConnected
		case n == 0:
			in.mu.Unlock()
			fillBy = time.Time{}
			if err := in.waitSignal(ctx, in.arrived, nil); err != nil {
				return nil, nil, err
			}
			continue
		case n < in.batchSize && in.mu.client != nil:
			if fillBy.IsZero() {
				fillBy = time.Now().Add(in.period)
			}
			if d := time.Until(fillBy); d > 0 {
				in.mu.Unlock()
				t := time.NewTimer(d)
				err := in.waitSignal(ctx, in.arrived, t.C)
				t.Stop()
				if err != nil {
					return nil, nil, err
				}
				continue
			}
		}
		batch, top := in.takeLocked()
		in.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		if err := in.waitStored(ctx, top); err != nil {
			return nil, nil, err
		}
		msgs, ack, ok := in.issue(batch)
		if !ok {
			continue // a batch failed meanwhile: these go again after it
		}
		return msgs, ack, nil
	}
}

// availableLocked counts (roughly: committed entries included) the entries
// left to emit.
func (in *mqttInput) availableLocked() int {
	end := in.mu.base + uint64(len(in.mu.ents))
	if in.mu.emit >= end {
		return 0
	}
	return int(end - max(in.mu.emit, in.mu.base))
}

// takeLocked picks the next batch from the deque and gives positions to
// the entries that have none. top is the highest position in it: the
// batch goes out once a checkpoint with next above it is stored, which
// holds every entry with a position (so also those of a batch sent again,
// or kept from before a restart). The entries queued behind the batch get
// positions too, up to max_in_flight batches, so that the store the batch
// waits for also covers the next ones.
func (in *mqttInput) takeLocked() (batch []*mqttEntry, top uint64) {
	// Positions follow the clock (in nanoseconds) where it is ahead: a
	// restart starts above any position used before even if a stale
	// checkpoint was stored last (see supersede).
	in.mu.next = max(in.mu.next, uint64(time.Now().UnixNano()))
	end := in.mu.base + uint64(len(in.mu.ents))
	s := max(in.mu.emit, in.mu.base)
	for ; s < end && len(batch) < in.batchSize; s++ {
		e := in.mu.ents[s-in.mu.base]
		if e.committed {
			continue
		}
		if e.pos == 0 {
			e.pos = in.mu.next
			in.mu.next++
		}
		batch = append(batch, e)
		top = max(top, e.pos)
	}
	if len(batch) == 0 {
		in.mu.emit = s // only committed entries, waiting for their PUBACK
	}
	ahead := top
	for n := 0; s < end && n < in.batchSize*in.inFlight; s, n = s+1, n+1 {
		if e := in.mu.ents[s-in.mu.base]; e.pos == 0 {
			e.pos = in.mu.next
			in.mu.next++
			ahead = e.pos
		}
	}
	if ahead >= in.mu.storedNext {
		in.mu.seq++
		signal(in.storeWake)
	}
	return batch, top
}

// issue turns a batch into messages with a ticket and an acknowledgement
// function; ok is false if a batch failed since it was taken.
func (in *mqttInput) issue(batch []*mqttEntry) (service.MessageBatch, service.AckFunc, bool) {
	in.mu.Lock()
	ack, tk, ok := in.fl.issueLocked(struct{}{}, false, func() {
		for _, e := range batch {
			e.committed = true
		}
		in.mu.seq++
	})
	if !ok {
		in.mu.Unlock()
		return nil, nil, false
	}
	in.mu.emit = batch[len(batch)-1].seq + 1
	in.mu.Unlock()
	msgs := make(service.MessageBatch, len(batch))
	slab := make([]byte, mqttPositionLen*len(batch))
	for i, e := range batch {
		m := e.msg.Copy()
		p := slab[i*mqttPositionLen : (i+1)*mqttPositionLen : (i+1)*mqttPositionLen]
		binary.BigEndian.PutUint64(p, e.pos)
		m.MetaSetMut(MetaPosition, p)
		m.MetaSetMut(MetaTicket, tk)
		msgs[i] = m
	}
	return msgs, func(ctx context.Context, err error) error {
		_ = ack(ctx, err)
		if err == nil {
			signal(in.storeWake)
		}
		return nil
	}, true
}

// endHoldLocked ends the wait for redeliveries after a restart: the
// messages sent again go first, in the order of their old positions, and
// the others follow in arrival order with new (higher) positions. Nothing
// was emitted before, so the deque may be reordered.
func (in *mqttInput) endHoldLocked() {
	if n := len(in.mu.expect); n > 0 {
		in.logger.Warn("messages in flight before the restart were not sent again by the broker", "messages", n, "waited", mqttRedeliveryWait)
	}
	in.mu.holding, in.mu.expect = false, nil
	var old, fresh []*mqttEntry
	for _, e := range in.mu.ents {
		if e.pos != 0 {
			old = append(old, e)
		} else {
			fresh = append(fresh, e)
		}
	}
	slices.SortStableFunc(old, func(a, b *mqttEntry) int { return cmp.Compare(a.pos, b.pos) })
	in.mu.ents = append(old, fresh...)
	for i, e := range in.mu.ents {
		e.seq = in.mu.base + uint64(i)
	}
	in.mu.emit = in.mu.base
	in.mu.seq++
	signal(in.storeWake)
	if len(old) > 0 {
		in.logger.Info("messages in flight before the restart sent again", "messages", len(old))
	}
}

// rewindIfFailed emits again from the first entry not committed if a batch
// failed, after a wait that grows while failures go on.
func (in *mqttInput) rewindIfFailed(ctx context.Context) error {
	why, wait := in.fl.failure()
	if why == nil {
		return nil
	}
	in.logger.Warn("a batch failed; sending its messages again", "after", wait, "err", why)
	if err := pause(ctx, wait, nil, in.done); err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.fl.rewoundLocked()
	in.mu.emit = in.mu.base
	for _, e := range in.mu.ents {
		if !e.committed {
			break
		}
		in.mu.emit = e.seq + 1
	}
	return nil
}

// waitStored waits until a stored checkpoint holds position top.
func (in *mqttInput) waitStored(ctx context.Context, top uint64) error {
	deadline := time.NewTimer(checkpointTimeout)
	defer deadline.Stop()
	for {
		in.mu.Lock()
		ok, ch, err := in.mu.storedNext > top, in.mu.stored, in.mu.storeErr
		if in.mu.superseded {
			ok, err = false, errMQTTSuperseded
		}
		in.mu.Unlock()
		if ok {
			return nil
		}
		if errors.Is(err, errMQTTSuperseded) {
			return err
		}
		select {
		case <-ch:
		case <-deadline.C:
			if err == nil {
				err = context.DeadlineExceeded
			}
			return fmt.Errorf("connectors: %s: storing the checkpoint: %w", in.sourceID, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-in.done:
			return context.Canceled
		}
	}
}

// waitSignal waits for c or t (either may be nil), or until ctx is done or
// the input closes.
func (in *mqttInput) waitSignal(ctx context.Context, c chan struct{}, t <-chan time.Time) error {
	select {
	case <-c:
		return nil
	case <-t:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-in.done:
		return context.Canceled
	}
}

// storeLoop stores the checkpoint whenever something changed, one store at
// a time: every change made while a store runs goes into the next.
func (in *mqttInput) storeLoop() {
	defer in.wg.Done()
	var backoff time.Duration
	for {
		in.mu.Lock()
		need := in.mu.seq > in.mu.storedSeq
		in.mu.Unlock()
		if !need {
			select {
			case <-in.storeWake:
				continue
			case <-in.done:
				return
			}
		}
		ctx, cancel := context.WithTimeout(in.ctx, checkpointTimeout)
		err := in.store(ctx)
		cancel()
		if err == nil {
			backoff = 0
			continue
		}
		if in.ctx.Err() != nil || errors.Is(err, errMQTTSuperseded) {
			return
		}
		in.logger.Warn("checkpoint", "err", err)
		backoff = min(max(2*backoff, minRewindWait), maxRewindWait)
		select {
		case <-time.After(backoff):
		case <-in.done:
			return
		}
	}
}

// store writes the checkpoint, then acknowledges to the broker the entries
// it no longer holds.
func (in *mqttInput) store(ctx context.Context) error {
	in.ckMu.Lock()
	defer in.ckMu.Unlock()
	in.mu.Lock()
	if in.mu.superseded {
		in.mu.Unlock()
		return errMQTTSuperseded
	}
	seq := in.mu.seq
	ck, acks := in.snapshotLocked()
	in.mu.Unlock()
	b := ck.encode()
	if !bytes.Equal(b, in.lastStored) {
		err := in.log.PutCheckpoint(ctx, in.ckKey, b)
		if err != nil {
			// A store whose outcome is unknown (a timeout, the node
			// closing) may have been applied: then its messages must be
			// acknowledged, or they come again without a position.
			if cur, ok := in.log.Checkpoint(in.ckKey); ok && bytes.Equal(cur, b) {
				err = nil
			}
		}
		if err != nil {
			in.mu.Lock()
			in.mu.storeErr = err
			in.mu.Unlock()
			return fmt.Errorf("connectors: %s: storing the checkpoint: %w", in.sourceID, err)
		}
		in.lastStored = b
	}
	in.finishStore(seq, ck.next, acks)
	return nil
}

// liveLocked reports whether e can be acknowledged on the current
// connection.
func (in *mqttInput) liveLocked(e *mqttEntry) bool {
	return e.gen == in.mu.gen && in.mu.client != nil && e.pub != nil && e.ackFailed != e.gen
}

// snapshotLocked returns the checkpoint to store and the entries it leaves
// out to be acknowledged once it is stored: committed entries whose PUBACK
// paho can send at once, because every message their connection delivered
// before them is committed too. (An entry left out of the checkpoint whose
// PUBACK waited behind another message could be lost in a crash meanwhile
// and come again without a position to match.)
func (in *mqttInput) snapshotLocked() (ck mqttCheckpoint, acks []*mqttEntry) {
	ck.next = in.mu.next
	var live []*mqttEntry
	for _, e := range in.mu.ents {
		e.ready = e.committed && e.noAck
		if !e.removed && !e.noAck && in.liveLocked(e) {
			live = append(live, e)
		}
	}
	slices.SortFunc(live, func(a, b *mqttEntry) int { return cmp.Compare(a.rseq, b.rseq) })
	for _, e := range live {
		if !e.committed {
			break
		}
		e.ready = true
	}
	for _, e := range in.mu.ents {
		switch {
		case e.removed:
		case e.ready:
			acks = append(acks, e)
			switch {
			case e.ringed:
			case e.hasID:
				e.ringed = true
				in.mu.recent.push(e.key)
			case !e.noAck && e.key != 0 && e.pub != nil:
				e.ringed = true
				in.mu.pubAcks.push(mqttPubAck{pid: e.pub.PacketID, key: e.key, gen: e.gen})
			}
		case e.pos != 0 && e.key != 0 && !e.noAck:
			ck.inflight = append(ck.inflight, mqttInflight{key: e.key, pos: e.pos})
		}
	}
	if in.mu.holding {
		for key, pos := range in.mu.expect {
			ck.inflight = append(ck.inflight, mqttInflight{key: key, pos: pos})
		}
	}
	ck.recent = in.mu.recent.appendTo(nil)
	ck.pubAcks = in.mu.pubAcks.appendTo(nil)
	return ck, acks
}

// finishStore records that seq is stored and acknowledges acks: PUBACKs
// go after the checkpoint that no longer holds their messages.
func (in *mqttInput) finishStore(seq, next uint64, acks []*mqttEntry) {
	type pending struct {
		e   *mqttEntry
		c   *paho.Client
		pub *paho.Publish
		gen uint64
	}
	var send []pending
	in.mu.Lock()
	in.mu.storedSeq = max(in.mu.storedSeq, seq)
	in.mu.storedNext = max(in.mu.storedNext, next)
	in.mu.storeErr = nil
	close(in.mu.stored)
	in.mu.stored = make(chan struct{})
	for _, e := range acks {
		switch {
		case e.removed:
		case e.noAck:
			in.removeLocked(e)
		case in.liveLocked(e):
			send = append(send, pending{e, in.mu.client, e.pub, e.gen})
		default:
			// Its connection went since: it waits, in the checkpoint
			// again, for the broker to send it once more.
			in.mu.seq++
		}
	}
	in.mu.Unlock()
	errs := make([]error, len(send))
	for i, p := range send {
		errs[i] = p.c.Ack(p.pub)
	}
	var lostTrack *paho.Client
	in.mu.Lock()
	for i, p := range send {
		switch {
		case p.e.removed:
		case errs[i] == nil && p.e.gen == p.gen:
			in.removeLocked(p.e)
		default:
			// Sent again on a new connection meanwhile, or its
			// connection is closing: acknowledge it after another store.
			if errs[i] != nil {
				p.e.ackFailed = p.gen
				if errors.Is(errs[i], paho.ErrPacketNotFound) && p.gen == in.mu.gen && p.c == in.mu.client {
					lostTrack = p.c
				}
			}
			in.mu.seq++
		}
	}
	in.trimLocked()
	more := in.mu.seq > in.mu.storedSeq
	gen := in.mu.gen
	in.mu.Unlock()
	if more {
		signal(in.storeWake)
	}
	if lostTrack != nil {
		// paho forgot a message it delivered (its acknowledgement list is
		// reset just after a connection starts delivering): it can never
		// be acknowledged on this connection, and holds its place in the
		// broker's window. A new connection gets it again.
		in.lost(gen, errors.New("mqtt: paho lost track of a message to acknowledge; reconnecting"))
		go func() { _ = lostTrack.Disconnect(&paho.Disconnect{ReasonCode: 0}) }()
	}
}

func (in *mqttInput) removeLocked(e *mqttEntry) {
	e.removed = true
	if e.key != 0 && in.mu.index[e.key] == e {
		delete(in.mu.index, e.key)
	}
}

// trimLocked drops the removed entries at the front of the deque.
func (in *mqttInput) trimLocked() {
	n := 0
	for n < len(in.mu.ents) && in.mu.ents[n].removed {
		in.mu.ents[n] = nil
		n++
	}
	if n == 0 {
		return
	}
	in.mu.ents = in.mu.ents[n:]
	in.mu.base += uint64(n)
	in.mu.emit = max(in.mu.emit, in.mu.base)
}

// Close stores a last checkpoint, acknowledges what it allows, and
// disconnects, leaving the session to the broker.
func (in *mqttInput) Close(ctx context.Context) error {
	var err error
	in.close1.Do(func() {
		close(in.done)
		in.cancel()
		in.wg.Wait()
		in.mu.Lock()
		loaded, c := in.mu.loaded, in.mu.client
		in.mu.Unlock()
		if loaded {
			if err = in.store(ctx); errors.Is(err, errMQTTSuperseded) {
				err = nil
			}
		}
		if c != nil {
			// paho sends the released PUBACKs every mqttAckInterval.
			select {
			case <-time.After(4 * mqttAckInterval):
			case <-ctx.Done():
			}
			_ = c.Disconnect(&paho.Disconnect{ReasonCode: 0})
		}
	})
	return err
}

// mqttWindow holds the id hashes of a device's last messages.
type mqttWindow struct {
	ids  []uint64
	next int
}

func (w *mqttWindow) has(h uint64) bool { return slices.Contains(w.ids, h) }

func (w *mqttWindow) add(h uint64, size int) {
	if len(w.ids) < size {
		w.ids = append(w.ids, h)
		return
	}
	w.ids[w.next] = h
	w.next = (w.next + 1) % size
}

// mqttRing holds the id hashes of the last messages acknowledged, oldest
// first, with a set for lookups.
type mqttRing struct {
	buf  []uint64
	head int // the oldest, once full
	set  map[uint64]int
}

func newMQTTRing(size int) mqttRing {
	return mqttRing{buf: make([]uint64, 0, size), set: make(map[uint64]int, size)}
}

func (r *mqttRing) has(h uint64) bool { return r.set[h] > 0 }

func (r *mqttRing) push(h uint64) {
	if cap(r.buf) == 0 {
		return
	}
	if len(r.buf) < cap(r.buf) {
		r.buf = append(r.buf, h)
	} else {
		old := r.buf[r.head]
		if r.set[old]--; r.set[old] <= 0 {
			delete(r.set, old)
		}
		r.buf[r.head] = h
		r.head = (r.head + 1) % len(r.buf)
	}
	r.set[h]++
}

// appendTo appends the hashes, oldest first.
func (r *mqttRing) appendTo(dst []uint64) []uint64 {
	dst = append(dst, r.buf[r.head:]...)
	return append(dst, r.buf[:r.head]...)
}

// mqttCheckpointVersion is the version of mqttCheckpoint's encoding;
// version 1 (without pubacks) is read too.
const mqttCheckpointVersion = 2

// mqttCheckpoint is what the MQTT source stores under "source/<source_id>",
// in binary since it is stored for every batch:
//
//	field     encoding                      meaning
//	version   1 byte                        2
//	next      uvarint                       the next position: every position used is below it
//	inflight  uvarint count, then per       the messages given a position and not yet acknowledged
//	          message: key (8 bytes,        to the broker: the hash of their dedupe id or of packet
//	          big-endian), position         id, topic and payload, and their position
//	          (uvarint)
//	recent    uvarint count, then 8-byte    the id hashes of the last messages acknowledged
//	          big-endian hashes             (with a dedupe id), oldest first
//	pubacks   uvarint count, then per       the last messages acknowledged without a dedupe id
//	          message: packet id (2 bytes,  (mqttPubAcks), oldest first: a redelivery of one is
//	          big-endian), key (8 bytes)    dropped
type mqttCheckpoint struct {
	next     uint64
	inflight []mqttInflight
	recent   []uint64
	pubAcks  []mqttPubAck
}

type mqttInflight struct{ key, pos uint64 }

func (c *mqttCheckpoint) encode() []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64*(4+len(c.inflight))+8*(len(c.inflight)+len(c.recent))+10*len(c.pubAcks))
	b = append(b, mqttCheckpointVersion)
	b = binary.AppendUvarint(b, c.next)
	b = binary.AppendUvarint(b, uint64(len(c.inflight)))
	for _, f := range c.inflight {
		b = binary.BigEndian.AppendUint64(b, f.key)
		b = binary.AppendUvarint(b, f.pos)
	}
	b = binary.AppendUvarint(b, uint64(len(c.recent)))
	for _, h := range c.recent {
		b = binary.BigEndian.AppendUint64(b, h)
	}
	b = binary.AppendUvarint(b, uint64(len(c.pubAcks)))
	for _, a := range c.pubAcks {
		b = binary.BigEndian.AppendUint16(b, a.pid)
		b = binary.BigEndian.AppendUint64(b, a.key)
	}
	return b
}

var (
	errMQTTCheckpoint = errors.New("connectors: corrupt mqtt checkpoint")
	errMQTTSuperseded = errors.New("connectors: another client holds the mqtt session: not storing the checkpoint")
)

func decodeMQTTCheckpoint(b []byte) (mqttCheckpoint, error) {
	var c mqttCheckpoint
	if len(b) == 0 {
		return c, errMQTTCheckpoint
	}
	version := b[0]
	if version != 1 && version != mqttCheckpointVersion {
		return c, fmt.Errorf("connectors: mqtt checkpoint version %d, this build reads 1 and %d", b[0], mqttCheckpointVersion)
	}
	b = b[1:]
	uvarint := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	var ok bool
	if c.next, ok = uvarint(); !ok {
		return c, errMQTTCheckpoint
	}
	n, ok := uvarint()
	if !ok || n > uint64(len(b))/9 {
		return c, errMQTTCheckpoint
	}
	c.inflight = make([]mqttInflight, n)
	for i := range c.inflight {
		if len(b) < 8 {
			return c, errMQTTCheckpoint
		}
		c.inflight[i].key = binary.BigEndian.Uint64(b)
		b = b[8:]
		if c.inflight[i].pos, ok = uvarint(); !ok {
			return c, errMQTTCheckpoint
		}
	}
	if n, ok = uvarint(); !ok || n > uint64(len(b))/8 || version == 1 && uint64(len(b)) != 8*n {
		return c, errMQTTCheckpoint
	}
	c.recent = make([]uint64, n)
	for i := range c.recent {
		c.recent[i] = binary.BigEndian.Uint64(b[8*i:])
	}
	b = b[8*n:]
	if version == 1 {
		return c, nil
	}
	if n, ok = uvarint(); !ok || uint64(len(b)) != 10*n {
		return c, errMQTTCheckpoint
	}
	c.pubAcks = make([]mqttPubAck, n)
	for i := range c.pubAcks {
		c.pubAcks[i] = mqttPubAck{pid: binary.BigEndian.Uint16(b[10*i:]), key: binary.BigEndian.Uint64(b[10*i+2:])}
	}
	return c, nil
}

// FNV-1a, 64 bits: identities of messages that are stored and compared
// across processes, so the hash must not depend on a seed.
const (
	fnvOffset64 uint64 = 14695981039346656037
	fnvPrime64  uint64 = 1099511628211
)

func fnvAdd[T string | []byte](h uint64, s T) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

func fnvAddUint(h, v uint64) uint64 {
	for range 8 {
		h ^= v & 0xff
		h *= fnvPrime64
		v >>= 8
	}
	return h
}

// mqttHashID is the identity of a message by its device and id.
func mqttHashID(dev, id string) uint64 {
	h := fnvAdd(fnvOffset64, "id")
	h = fnvAddUint(h, uint64(len(dev)))
	h = fnvAdd(fnvAdd(h, dev), id)
	return max(h, 1) // 0 means none
}

// mqttHashPublish is the identity of a QoS 1 message without an id: its
// packet identifier (the broker sends it again with the same), topic and
// payload.
func mqttHashPublish(p *paho.Publish) uint64 {
	h := fnvAdd(fnvOffset64, "pub")
	h = fnvAddUint(h, uint64(p.PacketID))
	h = fnvAddUint(h, uint64(len(p.Topic)))
	h = fnvAdd(fnvAdd(h, p.Topic), p.Payload)
	return max(h, 1)
}

// mqttURLs reads and checks the urls field.
func mqttURLs(conf *service.ParsedConfig) ([]string, error) {
	urls, err := conf.FieldStringList(mqttFieldURLs)
	if err != nil {
		return nil, err
	}
	if len(urls) == 0 {
		return nil, fmt.Errorf("%s: at least one broker is required", mqttFieldURLs)
	}
	for _, u := range urls {
		if _, _, err := mqttAddr(u); err != nil {
			return nil, fmt.Errorf("%s: %w", mqttFieldURLs, err)
		}
	}
	return urls, nil
}

// mqttCredentials reads the username, password and keep_alive fields.
func mqttCredentials(conf *service.ParsedConfig) (user, pass string, keepAlive uint16, err error) {
	if user, err = conf.FieldString(mqttFieldUsername); err != nil {
		return
	}
	if pass, err = conf.FieldString(mqttFieldPassword); err != nil {
		return
	}
	ka, err := conf.FieldDuration(mqttFieldKeepAlive)
	if err != nil {
		return
	}
	if ka < time.Second || ka.Seconds() > math.MaxUint16 {
		return user, pass, 0, fmt.Errorf("%s: %v: must be between 1s and %ds", mqttFieldKeepAlive, ka, math.MaxUint16)
	}
	return user, pass, uint16(ka / time.Second), nil
}

// mqttAddr parses a broker URL into an address and whether it uses TLS.
func mqttAddr(raw string) (addr string, useTLS bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("%q: %w", raw, err)
	}
	port := "1883"
	switch u.Scheme {
	case "tcp", "mqtt":
	case "tls", "ssl", "mqtts":
		useTLS, port = true, "8883"
	default:
		return "", false, fmt.Errorf("%q: scheme must be tcp, mqtt, tls, ssl or mqtts", raw)
	}
	if u.Hostname() == "" {
		return "", false, fmt.Errorf("%q: no host", raw)
	}
	if u.Port() != "" {
		port = u.Port()
	}
	return net.JoinHostPort(u.Hostname(), port), useTLS, nil
}

// mqttDial connects to the first of urls that answers.
func mqttDial(ctx context.Context, urls []string) (net.Conn, string, error) {
	var errs []error
	for _, raw := range urls {
		addr, useTLS, err := mqttAddr(raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var conn net.Conn
		if useTLS {
			host, _, _ := net.SplitHostPort(addr)
			d := tls.Dialer{Config: &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}}
			conn, err = d.DialContext(ctx, "tcp", addr)
		} else {
			var d net.Dialer
			conn, err = d.DialContext(ctx, "tcp", addr)
		}
		if err == nil {
			return conn, addr, nil
		}
		errs = append(errs, err)
	}
	return nil, "", fmt.Errorf("mqtt: no broker reachable: %w", errors.Join(errs...))
}

// mqttCheckFilter checks a subscription filter: `#` only as the last
// level, wildcards only as whole levels.
func mqttCheckFilter(f string) error {
	if f == "" {
		return errors.New("empty topic filter")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return errors.New("# must be the last level")
		case l != "#" && l != "+" && strings.ContainsAny(l, "#+"):
			return errors.New("a wildcard must be a whole level")
		}
	}
	return nil
}
