package connectors

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/samsa-io/samsa/log/replog"
	"github.com/samsa-io/samsa/transforms"
	"github.com/stretchr/testify/require"
)

// mqttTestURL returns the broker of SAMSA_TEST_MQTT (e.g.
// tcp://127.0.0.1:1883), skipping the test without it, or failing it
// under SAMSA_TEST_REQUIRE_SERVICES=1.
func mqttTestURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("SAMSA_TEST_MQTT")
	if u == "" {
		if os.Getenv("SAMSA_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatal("SAMSA_TEST_MQTT is not set (e.g. tcp://127.0.0.1:1883) and SAMSA_TEST_REQUIRE_SERVICES=1")
		}
		t.Skip("SAMSA_TEST_MQTT is not set (e.g. tcp://127.0.0.1:1883): skipping the MQTT test")
	}
	return u
}

// mqttUnique is a name no other test run uses.
func mqttUnique(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), rand.IntN(1_000_000_000))
}

// mosquitto is a broker of the test's own on a free loopback port, which
// the test stops and starts. Its configuration is what the guarantees of
// the samsa_mqtt input rely on: persistence (a restart keeps sessions and
// their queued and in-flight messages; Mosquitto writes them on SIGTERM)
// and no limit on the messages queued for a client (Mosquitto's default
// of 1000 drops the rest).
type mosquitto struct {
	bin, dir, conf, addr, url string
	cmd                       *exec.Cmd
	exited                    chan struct{}
}

// newMosquitto prepares a broker, not started; it is stopped at the end
// of the test. The test is skipped without SAMSA_TEST_MQTT or the
// mosquitto binary.
func newMosquitto(t testing.TB) *mosquitto {
	t.Helper()
	mqttTestURL(t)
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
		if _, err := os.Stat(bin); err != nil {
			if os.Getenv("SAMSA_TEST_REQUIRE_SERVICES") == "1" {
				t.Fatal("mosquitto is not installed (package mosquitto): this test runs a broker of its own")
			}
			t.Skip("mosquitto is not installed (package mosquitto): this test runs a broker of its own")
		}
	}
	m := &mosquitto{bin: bin, dir: t.TempDir(), addr: freeAddr(t)}
	m.url = "tcp://" + m.addr
	_, port, _ := net.SplitHostPort(m.addr)
	conf := fmt.Sprintf(`listener %s 127.0.0.1
allow_anonymous true
persistence true
persistence_location %s/
autosave_interval 1800
max_queued_messages 1000000
log_dest file %s/mosquitto.log
`, port, m.dir, m.dir)
	if os.Geteuid() == 0 {
		conf += "user root\n" // else it drops to user mosquitto, who cannot write the test's directory
	}
	m.conf = filepath.Join(m.dir, "mosquitto.conf")
	require.NoError(t, os.WriteFile(m.conf, []byte(conf), 0o644))
	t.Cleanup(func() { m.stop(t) })
	return m
}

// startMosquitto starts a broker of the test's own.
func startMosquitto(t testing.TB) *mosquitto {
	m := newMosquitto(t)
	m.start(t)
	return m
}

func (m *mosquitto) start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(m.bin, "-c", m.conf)
	require.NoError(t, cmd.Start())
	m.cmd, m.exited = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(m.exited)
	checkFor(t, 10*time.Second, 10*time.Millisecond, func() error {
		select {
		case <-m.exited:
			log, _ := os.ReadFile(filepath.Join(m.dir, "mosquitto.log"))
			t.Fatalf("mosquitto exited: %s", log)
		default:
		}
		c, err := net.Dial("tcp", m.addr)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// stop stops the broker as an operator would (SIGTERM: it saves its
// state first).
func (m *mosquitto) stop(t testing.TB) {
	t.Helper()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
	m.cmd = nil
}

// mqttConnect connects a plain paho client (automatic acknowledgements).
func mqttConnect(ctx context.Context, url string, cp *paho.Connect, onMsg func(*paho.Publish)) (*paho.Client, <-chan struct{}, error) {
	conn, _, err := mqttDial(ctx, []string{url})
	if err != nil {
		return nil, nil, err
	}
	dead := make(chan struct{})
	var once sync.Once
	gone := func() { once.Do(func() { close(dead) }) }
	conf := paho.ClientConfig{
		Conn: conn, PacketTimeout: 2 * time.Second,
		OnClientError: func(error) { gone() }, OnServerDisconnect: func(*paho.Disconnect) { gone() },
	}
	if onMsg != nil {
		conf.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			onMsg(pr.Packet)
			return true, nil
		}}
	}
	c := paho.NewClient(conf)
	if cp.KeepAlive == 0 {
		cp.KeepAlive = 30
	}
	if _, err := c.Connect(ctx, cp); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return c, dead, nil
}

// mqttDropSession ends a persistent session left at a broker.
func mqttDropSession(url, clientID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, _, err := mqttConnect(ctx, url, &paho.Connect{ClientID: clientID, CleanStart: true}, nil); err == nil {
		_ = c.Disconnect(&paho.Disconnect{})
	}
}

// mqttDevice is a simulated device: its own client, publishing QoS 1
// readings {"user": id, "n": n} one at a time (a "msg_id" user property
// holds n when withID), and publishing again what fails, so that the
// broker may get a reading twice, as from a real device.
type mqttDevice struct {
	url, id, topic string
	withID         bool
	c              *paho.Client
	dead           <-chan struct{}
	retries        int
}

func (d *mqttDevice) publish(ctx context.Context, n int) error {
	p := &paho.Publish{Topic: d.topic, QoS: 1, Payload: fmt.Appendf(nil, `{"user":%q,"n":%d}`, d.id, n)}
	if d.withID {
		p.Properties = &paho.PublishProperties{User: paho.UserProperties{{Key: "msg_id", Value: strconv.Itoa(n)}}}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.c == nil {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			c, dead, err := mqttConnect(cctx, d.url, &paho.Connect{ClientID: mqttUnique("dev-" + d.id), CleanStart: true}, nil)
			cancel()
			if err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			d.c, d.dead = c, dead
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := d.c.Publish(pctx, p)
		cancel()
		if err == nil {
			return nil
		}
		d.retries++
		d.close()
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *mqttDevice) close() {
	if d.c != nil {
		_ = d.c.Disconnect(&paho.Disconnect{})
		d.c = nil
	}
}

// fleet is devices publishing count readings each, one every pace.
type fleet struct {
	devs []*mqttDevice
	sent atomic.Int64
	wg   sync.WaitGroup
	errs chan error
}

func startFleet(t *testing.T, devs []*mqttDevice, count int, pace time.Duration) *fleet {
	t.Helper()
	f := &fleet{devs: devs, errs: make(chan error, len(devs))}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(func() { cancel(); f.wg.Wait() })
	for _, d := range devs {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer d.close()
			for n := range count {
				if err := d.publish(ctx, n); err != nil {
					f.errs <- fmt.Errorf("device %s: %w", d.id, err)
					return
				}
				f.sent.Add(1)
				time.Sleep(pace)
			}
		}()
	}
	return f
}

// wait waits for every device to have published everything.
func (f *fleet) wait(t *testing.T) {
	t.Helper()
	f.wg.Wait()
	select {
	case err := <-f.errs:
		t.Fatal(err)
	default:
	}
	retries := 0
	for _, d := range f.devs {
		retries += d.retries
	}
	t.Logf("%d readings published, %d publishes retried", f.sent.Load(), retries)
}

// waitSent waits until the fleet published n readings.
func (f *fleet) waitSent(t *testing.T, n int64) {
	t.Helper()
	checkFor(t, time.Minute, 5*time.Millisecond, func() error {
		if got := f.sent.Load(); got < n {
			return fmt.Errorf("%d readings published, waiting for %d", got, n)
		}
		return nil
	})
}

// waitFlowing publishes probe readings to topic until one reaches the
// Samsa topic: the input is connected and subscribed.
func waitFlowing(t *testing.T, l func() *replog.Log, url, mqttTopic, topic string) {
	t.Helper()
	probe := &mqttDevice{url: url, id: "probe", topic: mqttTopic}
	defer probe.close()
	ctx := ctxT(t, time.Minute)
	for n := 0; ; n++ {
		require.NoError(t, probe.publish(ctx, n))
		byDev, err := readMQTTTopic(l(), topic)
		if err == nil && len(byDev["probe"]) > 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readMQTTTopic returns each device's readings in a topic keyed by device,
// in partition order, checking that each record's key is its device.
func readMQTTTopic(l *replog.Log, topic string) (map[string][]int, error) {
	tp, ok := l.Topic(topic)
	if !ok {
		return nil, fmt.Errorf("no topic %q yet", topic)
	}
	out := map[string][]int{}
	for p := range len(tp.Partitions) {
		recs, err := tryReadPartition(l, replog.TopicPartition{Topic: topic, Partition: int32(p)})
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			var pl play
			if err := json.Unmarshal([]byte(r.Value), &pl); err != nil {
				return nil, fmt.Errorf("record %q: %w", r.Value, err)
			}
			if string(r.Key) != pl.User {
				return nil, fmt.Errorf("record %q has key %q", r.Value, r.Key)
			}
			out[pl.User] = append(out[pl.User], pl.N)
		}
	}
	return out, nil
}

// checkDevices waits until the topic holds every reading 0..count-1 of
// each device, then checks each device's order (the first time each
// reading appears) and that devices with ids have no duplicates. It
// returns the duplicates of the others.
func checkDevices(t *testing.T, l *replog.Log, topic string, devs []*mqttDevice, count int) (dups int) {
	t.Helper()
	var byDev map[string][]int
	checkFor(t, time.Minute, 50*time.Millisecond, func() error {
		var err error
		if byDev, err = readMQTTTopic(l, topic); err != nil {
			return err
		}
		missing := 0
		for _, d := range devs {
			seen := map[int]bool{}
			for _, n := range byDev[d.id] {
				seen[n] = true
			}
			missing += count - len(seen)
		}
		if missing > 0 {
			return fmt.Errorf("%d readings missing", missing)
		}
		return nil
	})
	for _, d := range devs {
		seen := map[int]bool{}
		last := -1
		for _, n := range byDev[d.id] {
			require.True(t, n >= 0 && n < count, "device %s: reading %d", d.id, n)
			if seen[n] {
				require.False(t, d.withID, "device %s (with ids): reading %d twice", d.id, n)
				dups++
				continue
			}
			seen[n] = true
			require.Greater(t, n, last, "device %s: reading %d after %d", d.id, n, last)
			last = n
		}
	}
	return dups
}

// mqttSourceConf is a stream from the MQTT input into a topic keyed by
// device.
func mqttSourceConf(url, filter, sourceID, topic, extra string) string {
	return fmt.Sprintf(`
input:
  samsa_mqtt:
    urls: [%q]
    topics: [%q]
    key_level: 1
    dedupe_id: '${! meta("msg_id") }'
    source_id: %s
    session_expiry: 10m
    batch_size: 100
%s
output:
  samsa_topic:
    topic: %s
    partitions: 3
    key: '${! meta("samsa_key") }'
`, url, filter, sourceID, extra, topic)
}

func newDevices(url, prefix string, n int, withID func(i int) bool) []*mqttDevice {
	devs := make([]*mqttDevice, n)
	for i := range devs {
		id := fmt.Sprintf("d%02d", i)
		devs[i] = &mqttDevice{url: url, id: id, topic: prefix + "/" + id + "/readings", withID: withID(i)}
	}
	return devs
}

// TestMQTTWildcardsIntegration subscribes with + and # filters: readings
// of several devices land in a topic keyed by the device id from the
// topic, each device's in order, once, with the MQTT topic and user
// properties as headers; topics the filters do not match stay out.
func TestMQTTWildcardsIntegration(t *testing.T) {
	url := mqttTestURL(t)
	n := newNode(t)
	prefix := mqttUnique("samsa-it")
	source := mqttUnique("wild")
	t.Cleanup(func() { mqttDropSession(url, "samsa-"+source) })
	startStream(t, env(t, n.log), fmt.Sprintf(`
input:
  samsa_mqtt:
    urls: [%q]
    topics: [%q, %q]
    key_level: 2
    dedupe_id: '${! meta("msg_id") }'
    source_id: %s
    session_expiry: 1m
output:
  samsa_topic:
    topic: wild
    partitions: 3
    key: '${! meta("samsa_key") }'
`, url, prefix+"/devices/+/readings", prefix+"/sensors/#", source))
	waitFlowing(t, func() *replog.Log { return n.log }, url, prefix+"/devices/probe/readings", "wild")

	devs := newDevices(url, prefix+"/devices", 5, func(i int) bool { return i%2 == 0 })
	for i, d := range devs[3:] {
		d.topic = fmt.Sprintf("%s/sensors/%s/temp/%d", prefix, d.id, i)
	}
	others := []*mqttDevice{
		{url: url, id: "status", topic: prefix + "/devices/d00/status"},
		{url: url, id: "other", topic: prefix + "/other/d00/readings"},
	}
	f := startFleet(t, append(slices.Clone(devs), others...), 100, time.Millisecond)
	f.wait(t)
	require.Zero(t, checkDevices(t, n.log, "wild", devs, 100), "duplicates")

	byDev, err := readMQTTTopic(n.log, "wild")
	require.NoError(t, err)
	require.NotContains(t, byDev, "status")
	require.NotContains(t, byDev, "other")
	topics := map[string]string{}
	for _, d := range devs {
		topics[d.id] = d.topic
	}
	for p := range int32(3) {
		for _, r := range readPartition(t, n.log, replog.TopicPartition{Topic: "wild", Partition: p}) {
			if string(r.Key) == "probe" {
				continue
			}
			require.Equal(t, topics[string(r.Key)], r.Headers[MetaMQTTTopic], "record %s", r.Value)
			var pl play
			require.NoError(t, json.Unmarshal([]byte(r.Value), &pl))
			if _, ok := r.Headers["msg_id"]; ok {
				require.Equal(t, strconv.Itoa(pl.N), r.Headers["msg_id"])
			}
		}
	}
}

// TestMQTTBrokerRestartIntegration sends a burst of 10,000 QoS 1 readings
// from 50 devices, each its own client, and restarts the broker in the
// middle: the input loses its connection, reconnects to its session and
// gets what was queued meanwhile; the devices publish again what failed.
// Every reading is in the topic once (the devices give ids), each
// device's in order.
func TestMQTTBrokerRestartIntegration(t *testing.T) {
	m := startMosquitto(t)
	n := newNode(t)
	source := mqttUnique("restart")
	startStream(t, env(t, n.log), mqttSourceConf(m.url, "fleet/+/readings", source, "burst", ""))
	waitFlowing(t, func() *replog.Log { return n.log }, m.url, "fleet/probe/readings", "burst")

	devs := newDevices(m.url, "fleet", 50, func(int) bool { return true })
	f := startFleet(t, devs, 200, 10*time.Millisecond)
	f.waitSent(t, 4000)
	m.stop(t)
	time.Sleep(300 * time.Millisecond)
	m.start(t)
	f.wait(t)
	require.Zero(t, checkDevices(t, n.log, "burst", devs, 200))
}

// TestMQTTExactlyOnceAcrossNodeRestartsIntegration stops the stream, and
// closes the node under it (losing even its last checkpoint), while
// devices go on publishing, then starts again: nothing is lost, each
// device's readings are in order, devices with ids have no duplicates.
// Devices without ids may have some (a crash between the store that took
// a message out of the checkpoint and the broker's receipt of its PUBACK):
// their count is logged.
func TestMQTTExactlyOnceAcrossNodeRestartsIntegration(t *testing.T) {
	m := startMosquitto(t)
	n := newNode(t)
	source := mqttUnique("eo")
	conf := mqttSourceConf(m.url, "plant/+/readings", source, "eo", "    max_in_flight: 3")
	cur := startStream(t, env(t, n.log), conf)
	waitFlowing(t, func() *replog.Log { return n.log }, m.url, "plant/probe/readings", "eo")

	const count = 400
	devs := newDevices(m.url, "plant", 8, func(i int) bool { return i%2 == 0 })
	f := startFleet(t, devs, count, 8*time.Millisecond)
	for i, stop := range []string{"crash", "stop", "crash"} {
		target := (i + 1) * len(devs) * count / 5
		checkFor(t, time.Minute, 5*time.Millisecond, func() error {
			if got := countTopic(t, n.log, "eo"); got < target {
				return fmt.Errorf("%d records, waiting for %d", got, target)
			}
			return nil
		})
		switch stop {
		case "stop":
			cur.stop(t, time.Millisecond)
		case "crash":
			n.close(t)
			cur.stop(t, time.Second)
			n.open(t)
		}
		cur = startStream(t, env(t, n.log), conf)
	}
	f.wait(t)
	dups := checkDevices(t, n.log, "eo", devs, count)
	t.Logf("duplicates of devices without ids: %d", dups)
}

// TestMQTTLostPubackIntegration stores readings without ids whose PUBACKs
// never reach the broker (a proxy between the input and Mosquitto drops
// what the input sends from some moment on), then closes the node under
// the stream, twice: the broker sends those readings again, with their
// packet identifiers and DUP set, and the restarted input drops them, so
// each reading is in the topic once.
func TestMQTTLostPubackIntegration(t *testing.T) {
	m := startMosquitto(t)
	proxy := newTCPProxy(t, "127.0.0.1:0", m.addr)
	n := newNode(t)
	source := mqttUnique("puback")
	conf := mqttSourceConf("tcp://"+proxy.ln.Addr().String(), "dev/+/readings", source, "puback", "    max_in_flight: 2")
	cur := startStream(t, env(t, n.log), conf)
	waitFlowing(t, func() *replog.Log { return n.log }, m.url, "dev/probe/readings", "puback")

	const count = 300
	devs := newDevices(m.url, "dev", 4, func(int) bool { return false })
	f := startFleet(t, devs, count, 5*time.Millisecond)
	lost := 0
	for round := range 2 {
		target := (round + 1) * len(devs) * count / 4
		checkFor(t, time.Minute, 5*time.Millisecond, func() error {
			if got := countTopic(t, n.log, "puback"); got < target {
				return fmt.Errorf("%d records, waiting for %d", got, target)
			}
			return nil
		})
		proxy.mute()
		before := countTopic(t, n.log, "puback")
		var after int
		checkFor(t, 30*time.Second, 5*time.Millisecond, func() error {
			if after = countTopic(t, n.log, "puback"); after < before+50 {
				return fmt.Errorf("%d records stored since the PUBACKs are lost, waiting for 50", after-before)
			}
			return nil
		})
		time.Sleep(100 * time.Millisecond) // the checkpoints without them stored, the PUBACKs sent
		lost += countTopic(t, n.log, "puback") - before
		n.close(t)
		cur.stop(t, time.Second)
		proxy.cut(0) // the broker sees the connection go
		n.open(t)
		cur = startStream(t, env(t, n.log), conf)
	}
	f.wait(t)
	retries := 0
	for _, d := range devs {
		retries += d.retries
	}
	dups := checkDevices(t, n.log, "puback", devs, count)
	t.Logf("%d readings stored whose PUBACK was lost, %d duplicates, %d publishes retried by devices", lost, dups, retries)
	require.LessOrEqual(t, dups, retries, "only a device publishing twice may double a reading")

	// Once a new message shows the broker sent everything again, and the
	// broker confirms the PUBACKs since, the checkpoint holds none.
	probe := &mqttDevice{url: m.url, id: "probe", topic: "dev/probe/readings"}
	defer probe.close()
	require.NoError(t, probe.publish(ctxT(t, 10*time.Second), 1000))
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		b, _ := n.log.Checkpoint("source/" + source)
		ck, err := decodeMQTTCheckpoint(b)
		if err != nil {
			return err
		}
		if len(ck.pubAcks) > 0 {
			return fmt.Errorf("%d PUBACKs not confirmed", len(ck.pubAcks))
		}
		return nil
	})
}

// TestMQTTBrokerDownAtStartIntegration starts the input while the broker
// is down: Connect fails with an error naming the broker, the stream
// retries, and takes readings once the broker is up.
func TestMQTTBrokerDownAtStartIntegration(t *testing.T) {
	m := newMosquitto(t)
	n := newNode(t)
	source := mqttUnique("down")
	conf := mqttSourceConf(m.url, "late/+/readings", source, "down", "")

	pc, err := mqttInputSpec().ParseYAML(fmt.Sprintf("urls: [%q]\ntopics: [late/+/readings]\nsource_id: %s\n", m.url, source), service.NewEnvironment())
	require.NoError(t, err)
	in, err := newMQTTInput(pc, Deps{Log: n.log, Logger: quietLogger()})
	require.NoError(t, err)
	err = in.Connect(ctxT(t, 10*time.Second))
	require.ErrorContains(t, err, "no broker reachable")
	require.ErrorContains(t, err, m.addr)
	require.NoError(t, in.Close(ctxT(t, 10*time.Second)))

	startStream(t, env(t, n.log), conf)
	time.Sleep(500 * time.Millisecond) // a few failed connects
	m.start(t)
	waitFlowing(t, func() *replog.Log { return n.log }, m.url, "late/probe/readings", "down")
	devs := newDevices(m.url, "late", 3, func(i int) bool { return i == 0 })
	startFleet(t, devs, 100, time.Millisecond).wait(t)
	require.Zero(t, checkDevices(t, n.log, "down", devs, 100))
}

// TestMQTTFailedBatchIntegration lets a stage fail now and then with
// several batches in flight: a failed batch is sent again by the input
// (never acknowledged to the broker before it is stored), nothing after
// it is written ahead of it, and at the end the broker holds nothing
// unacknowledged for the input's session.
func TestMQTTFailedBatchIntegration(t *testing.T) {
	url := mqttTestURL(t)
	n := newNode(t)
	prefix := mqttUnique("samsa-it")
	source := mqttUnique("flaky")
	t.Cleanup(func() { mqttDropSession(url, "samsa-"+source) })
	e := env(t, n.log)
	require.NoError(t, transforms.Register(e, transforms.Deps{Logger: quietLogger()}))
	f := &flaky{seen: map[int]bool{}}
	require.NoError(t, e.RegisterProcessor("flaky", service.NewConfigSpec(), func(*service.ParsedConfig, *service.Resources) (service.Processor, error) {
		return f, nil
	}))
	st := startStream(t, e, fmt.Sprintf(`
input:
  samsa_mqtt:
    urls: [%q]
    topics: [%q]
    source_id: %s
    session_expiry: 1m
    batch_size: 10
    max_in_flight: 4
pipeline:
  threads: 1
  processors:
    - samsa_stage: {name: flaky, on_error: fail, processors: [{flaky: {}}]}
output:
  samsa_topic:
    topic: flaky
    partitions: 3
    key: '${! meta("samsa_key") }'
error_handling: {strict: true}
`, url, prefix+"/+/readings", source))
	waitFlowing(t, func() *replog.Log { return n.log }, url, prefix+"/probe/readings", "flaky")
	devs := newDevices(url, prefix, 4, func(int) bool { return false })
	startFleet(t, devs, 300, time.Millisecond).wait(t)
	require.Zero(t, checkDevices(t, n.log, "flaky", devs, 300))
	st.stop(t, 10*time.Second)

	// Everything was acknowledged: the session has nothing to send again.
	var got atomic.Int64
	c, _, err := mqttConnect(ctxT(t, 10*time.Second), url, &paho.Connect{ClientID: "samsa-" + source, CleanStart: false},
		func(*paho.Publish) { got.Add(1) })
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	require.NoError(t, c.Disconnect(&paho.Disconnect{}))
	require.Zero(t, got.Load(), "messages sent again after the stream stopped")
}

// TestMQTTSinkIntegration publishes the records of a topic keyed by device
// to each device's command topic: every device's subscriber gets its
// commands, in order.
func TestMQTTSinkIntegration(t *testing.T) {
	url := mqttTestURL(t)
	n := newNode(t)
	prefix := mqttUnique("samsa-it")
	e := env(t, n.log)
	startStream(t, e, `
input:
  generate:
    count: 90
    interval: ""
    mapping: |
      let c = counter() - 1
      root = {"user": "d" + ($c % 3).string(), "n": $c}
output:
  samsa_topic:
    topic: cmds
    partitions: 2
    key: '${! json("user") }'
`)
	checkFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		if got := countTopic(t, n.log, "cmds"); got < 90 {
			return fmt.Errorf("%d records", got)
		}
		return nil
	})

	var mu sync.Mutex
	got := map[string][]int{}
	for d := range 3 {
		dev := fmt.Sprintf("d%d", d)
		c, _, err := mqttConnect(ctxT(t, 10*time.Second), url, &paho.Connect{ClientID: mqttUnique("sub"), CleanStart: true}, func(p *paho.Publish) {
			var pl play
			if json.Unmarshal(p.Payload, &pl) == nil {
				mu.Lock()
				got[dev] = append(got[dev], pl.N)
				mu.Unlock()
			}
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}) })
		_, err = c.Subscribe(ctxT(t, 10*time.Second), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: prefix + "/devices/" + dev + "/commands", QoS: 1}}})
		require.NoError(t, err)
	}
	startStream(t, e, fmt.Sprintf(`
input:
  samsa_topic: {topic: cmds, group: sink, start: earliest}
output:
  samsa_mqtt:
    urls: [%q]
    topic: '%s/devices/${! meta("kafka_key") }/commands'
    qos: 1
`, url, prefix))
	checkFor(t, 30*time.Second, 10*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		for d := range 3 {
			if len(got[fmt.Sprintf("d%d", d)]) < 30 {
				return fmt.Errorf("commands received: %v", got)
			}
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for d := range 3 {
		var want []int
		for c := d; c < 90; c += 3 {
			want = append(want, c)
		}
		require.Equal(t, want, got[fmt.Sprintf("d%d", d)], "device d%d", d)
	}
}

// TestMQTTConfig checks the input's and output's config errors name their
// field.
func TestMQTTConfig(t *testing.T) {
	e := service.NewEnvironment()
	for _, c := range []struct{ yaml, err string }{
		{`{urls: [tcp://127.0.0.1:1883], topics: [a/+], source_id: s, qos: 2}`, "qos"},
		{`{urls: [tcp://127.0.0.1:1883], topics: [a/+], source_id: ""}`, "source_id"},
		{`{urls: [http://127.0.0.1:1883], topics: [a/+], source_id: s}`, "urls"},
		{`{urls: [], topics: [a/+], source_id: s}`, "urls"},
		{`{urls: [tcp://127.0.0.1:1883], topics: [a/#/b], source_id: s}`, "topics"},
		{`{urls: [tcp://127.0.0.1:1883], topics: [a/b+], source_id: s}`, "topics"},
		{`{urls: [tcp://127.0.0.1:1883], topics: [], source_id: s}`, "topics"},
		{`{urls: [tcp://127.0.0.1:1883], topics: [a], source_id: s, session_expiry: -1s}`, "session_expiry"},
		{`{urls: [tcp://127.0.0.1:1883], topics: [a], source_id: s, batch_size: 0}`, "batch_size"},
	} {
		pc, err := mqttInputSpec().ParseYAML(c.yaml, e)
		if err == nil {
			_, err = newMQTTInput(pc, Deps{Logger: quietLogger()})
		}
		require.ErrorContains(t, err, c.err, c.yaml)
	}
	pc, err := mqttInputSpec().ParseYAML(`{urls: [tcp://127.0.0.1:1883], topics: [a/+/b], source_id: s}`, e)
	require.NoError(t, err)
	in, err := newMQTTInput(pc, Deps{Logger: quietLogger()})
	require.NoError(t, err)
	require.Equal(t, "samsa-s", in.clientID)
	require.Equal(t, uint16(2000), in.recvMax)
	require.NoError(t, in.Close(context.Background()))

	for _, c := range []struct{ yaml, err string }{
		{`{urls: [tcp://127.0.0.1:1883], topic: x, qos: 3}`, "qos"},
		{`{urls: [udp://x], topic: x}`, "urls"},
	} {
		pc, err := mqttOutputSpec().ParseYAML(c.yaml, e)
		if err == nil {
			_, _, err = newMQTTOutput(pc, Deps{Logger: quietLogger()})
		}
		require.ErrorContains(t, err, c.err, c.yaml)
	}
}

// TestMQTTCheckpoint round-trips the checkpoint and refuses damaged ones.
func TestMQTTCheckpoint(t *testing.T) {
	ck := mqttCheckpoint{
		next: 1 << 40, inflight: []mqttInflight{{1, 5}, {^uint64(0), 1 << 40}}, recent: []uint64{7, 8, 9},
		pubAcks: []mqttPubAck{{pid: 1, key: 11}, {pid: 65535, key: ^uint64(0)}},
	}
	b := ck.encode()
	got, err := decodeMQTTCheckpoint(b)
	require.NoError(t, err)
	require.Equal(t, ck, got)

	// Version 1, from before pubacks, is read.
	v1 := []byte{1}
	v1 = binary.AppendUvarint(v1, 42)
	v1 = binary.AppendUvarint(v1, 1)
	v1 = binary.BigEndian.AppendUint64(v1, 3)
	v1 = binary.AppendUvarint(v1, 41)
	v1 = binary.AppendUvarint(v1, 2)
	v1 = binary.BigEndian.AppendUint64(v1, 7)
	v1 = binary.BigEndian.AppendUint64(v1, 8)
	got, err = decodeMQTTCheckpoint(v1)
	require.NoError(t, err)
	require.Equal(t, mqttCheckpoint{next: 42, inflight: []mqttInflight{{3, 41}}, recent: []uint64{7, 8}}, got)
	_, err = decodeMQTTCheckpoint(append(v1, 0))
	require.Error(t, err, "version 1 ends with recent")
	empty, err := decodeMQTTCheckpoint((&mqttCheckpoint{next: 1}).encode())
	require.NoError(t, err)
	require.Equal(t, uint64(1), empty.next)
	for i := range len(b) {
		_, err := decodeMQTTCheckpoint(b[:i])
		require.Error(t, err, "truncated to %d bytes", i)
	}
	_, err = decodeMQTTCheckpoint(append([]byte{9}, b[1:]...))
	require.ErrorContains(t, err, "version 9")
}

// mqttPubAcks holds the last messages acknowledged, drops those whose
// packet identifier the broker gave a new message, and keeps the order.
func TestMQTTPubAcks(t *testing.T) {
	r := newMQTTPubAcks(3)
	r.push(mqttPubAck{pid: 1, key: 10})
	r.push(mqttPubAck{pid: 2, key: 20})
	r.push(mqttPubAck{pid: 0, key: 0}) // no identity: ignored
	require.True(t, r.has(10))
	require.False(t, r.has(30))
	r.push(mqttPubAck{pid: 3, key: 30})
	r.push(mqttPubAck{pid: 4, key: 40}) // the oldest goes
	require.False(t, r.has(10))
	require.Equal(t, []mqttPubAck{{pid: 2, key: 20}, {pid: 3, key: 30}, {pid: 4, key: 40}}, r.appendTo(nil))

	require.False(t, r.reused(1), "identifier 1 is no longer held")
	require.True(t, r.reused(3))
	require.False(t, r.has(30))
	require.Equal(t, []mqttPubAck{{pid: 2, key: 20}, {pid: 4, key: 40}}, r.appendTo(nil))
	r.push(mqttPubAck{pid: 5, key: 50}) // over the oldest slot, not the dropped one
	require.Equal(t, []mqttPubAck{{pid: 4, key: 40}, {pid: 5, key: 50}}, r.appendTo(nil))
	require.False(t, r.has(20))
	r.push(mqttPubAck{pid: 5, key: 51})
	r.push(mqttPubAck{pid: 5, key: 52})
	require.True(t, r.reused(5))
	require.Empty(t, r.appendTo(nil))
	require.Empty(t, r.keys)
	require.Empty(t, r.pids)

	// Confirmed: by connection and PUBACKs written.
	r.push(mqttPubAck{pid: 7, key: 70, gen: 1})
	r.push(mqttPubAck{pid: 8, key: 80, gen: 2})
	r.push(mqttPubAck{pid: 9, key: 90, gen: 2})
	written := map[uint16]uint64{7: 1, 8: 2, 9: 3}
	require.False(t, r.confirmable(2, written, 1))
	require.True(t, r.confirmable(2, written, 2))
	require.True(t, r.confirm(2, written, 2))
	require.Equal(t, []mqttPubAck{{pid: 7, key: 70}, {pid: 9, key: 90}}, r.appendTo(nil))
	require.Equal(t, map[uint16]uint64{7: 1, 9: 3}, written)
	require.False(t, r.confirmable(2, written, 2))
	require.True(t, r.dropBefore(2), "connection 1 is over")
	require.Equal(t, []mqttPubAck{{pid: 9, key: 90}}, r.appendTo(nil))
	r.push(mqttPubAck{pid: 10, key: 100}) // read from a checkpoint
	require.True(t, r.dropBefore(1))
	require.Equal(t, []mqttPubAck{{pid: 9, key: 90}}, r.appendTo(nil))

	r.push(mqttPubAck{pid: 6, key: 60})
	r.reset()
	require.False(t, r.has(60))
	require.Equal(t, 3, r.size)
}

// TestMQTTHelpers checks topic levels, identities and the windows.
func TestMQTTHelpers(t *testing.T) {
	require.Equal(t, "d1", mqttTopicLevel("devices/d1/readings", 1))
	require.Equal(t, "readings", mqttTopicLevel("devices/d1/readings", -1))
	require.Equal(t, "a/b", mqttTopicLevel("a/b", 5))
	// Identities are stored: they must not change between builds.
	require.Equal(t, uint64(0x7fc1c3620da1aedf), mqttHashID("d1", "42"))
	require.NotEqual(t, mqttHashID("d1", "42"), mqttHashID("d14", "2"))
	p := &paho.Publish{PacketID: 7, Topic: "a/b", Payload: []byte("x")}
	q := &paho.Publish{PacketID: 8, Topic: "a/b", Payload: []byte("x")}
	require.NotEqual(t, mqttHashPublish(p), mqttHashPublish(q))

	var w mqttWindow
	for i := range uint64(10) {
		w.add(i, 4)
	}
	require.True(t, w.has(9) && w.has(6))
	require.False(t, w.has(5))
	r := newMQTTRing(3)
	for i := range uint64(5) {
		r.push(i)
	}
	require.Equal(t, []uint64{2, 3, 4}, r.appendTo(nil))
	require.False(t, r.has(1))
	require.True(t, r.has(2))
	require.NoError(t, mqttCheckFilter("a/+/#"))
	require.Error(t, mqttCheckTopic("a/+"))
}

// BenchmarkMQTTSource drains b.N readings (100 bytes) queued at a broker
// for two persistent sessions at once: the samsa_mqtt input into a topic
// (acks=all, each PUBACK after the commit) and a plain paho subscriber
// that acknowledges on receipt. It reports messages/s for each. It runs
// its own Mosquitto (no queue limit) where SAMSA_TEST_MQTT is set.
func BenchmarkMQTTSource(b *testing.B) {
	m := startMosquitto(b)
	n := newNode(b)
	source := mqttUnique("bench")
	conf := fmt.Sprintf(`
input:
  samsa_mqtt:
    urls: [%q]
    topics: [bench/+/readings]
    source_id: %s
    session_expiry: 10m
output:
  samsa_topic:
    topic: bench
    partitions: 3
    key: '${! meta("samsa_key") }'
`, m.url, source)
	ctx := ctxT(b, 10*time.Minute)
	// Both sessions exist before the readings are published.
	sub := func(clientID string, onMsg func(*paho.Publish)) *paho.Client {
		expiry := uint32(600)
		c, _, err := mqttConnect(ctx, m.url, &paho.Connect{ClientID: clientID, Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}}, onMsg)
		require.NoError(b, err)
		_, err = c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "bench/+/readings", QoS: 1, RetainHandling: 1}}})
		require.NoError(b, err)
		return c
	}
	require.NoError(b, sub("samsa-"+source, nil).Disconnect(&paho.Disconnect{}))
	var rawGot atomic.Int64
	rawDone := make(chan time.Time, 1)
	require.NoError(b, sub("raw-"+source, nil).Disconnect(&paho.Disconnect{}))
	e := env(b, n.log)
	require.NoError(b, n.log.CreateTopic(ctx, replog.TopicSpec{Name: "bench", Partitions: 3, ReplicationFactor: 1}, false))

	const publishers = 10
	pad := strings.Repeat("x", 60)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := mqttConnect(ctx, m.url, &paho.Connect{ClientID: mqttUnique("pub"), CleanStart: true}, nil)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Disconnect(&paho.Disconnect{})
			var inner sync.WaitGroup
			for i := p; i < b.N; i += publishers {
				inner.Add(1)
				go func() { // QoS 1 publishes pipelined, up to the broker's receive maximum
					defer inner.Done()
					payload := fmt.Appendf(nil, `{"user":"u%02d","n":%d,"pad":"%s"}`, i%50, i, pad)
					if _, err := c.Publish(ctx, &paho.Publish{Topic: fmt.Sprintf("bench/u%02d/readings", i%50), QoS: 1, Payload: payload}); err != nil {
						b.Error(err)
					}
				}()
				if i%(publishers*256) == p {
					inner.Wait()
				}
			}
			inner.Wait()
		}()
	}
	wg.Wait()

	b.ResetTimer()
	start := time.Now()
	raw := sub("raw-"+source, func(*paho.Publish) {
		if rawGot.Add(1) == int64(b.N) {
			rawDone <- time.Now()
		}
	})
	defer raw.Disconnect(&paho.Disconnect{})
	startStream(b, e, conf)
	checkFor(b, 10*time.Minute, time.Millisecond, func() error {
		if got := countTopic(b, n.log, "bench"); got < b.N {
			return fmt.Errorf("%d of %d", got, b.N)
		}
		return nil
	})
	samsa := time.Since(start)
	b.StopTimer()
	var rawTook time.Duration
	select {
	case at := <-rawDone:
		rawTook = at.Sub(start)
	case <-time.After(time.Minute):
		b.Fatalf("the raw subscriber got %d of %d", rawGot.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/samsa.Seconds(), "samsa_msgs/s")
	b.ReportMetric(float64(b.N)/rawTook.Seconds(), "paho_msgs/s")
}
