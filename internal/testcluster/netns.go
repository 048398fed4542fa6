package testcluster

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// A network of its own. StartIsolated runs each node in a network
// namespace of its own (ip netns), on a bridge with an address in a /24 of
// 10.254.0.0/16 chosen at random, so that a test can cut nodes off from
// each other as a network partition does (Partition, Heal) while the test
// process, on the bridge too, still reaches every node. Nothing leaves the
// machine: the bridge has no other port.

// isolatedNet is the bridge and namespaces of one cluster.
type isolatedNet struct {
	t      testing.TB
	subnet int // 10.254.<subnet>.0/24
	bridge string
	nss    []string
}

// StartIsolated starts n nodes, each in its own network namespace. It
// needs root and iproute2 (`ip`), and skips the test without them.
func StartIsolated(t testing.TB, n int, extra ...string) *Cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network namespaces need iproute2's ip")
	}
	net := &isolatedNet{t: t, subnet: 1 + rand.IntN(250)}
	net.bridge = fmt.Sprintf("sbr%d", net.subnet)
	net.must("link", "add", net.bridge, "type", "bridge")
	net.must("addr", "add", net.addr(254)+"/24", "dev", net.bridge)
	net.must("link", "set", net.bridge, "up")
	for i := 1; i <= n; i++ {
		ns, host, inner := fmt.Sprintf("samsa-%d-%d", net.subnet, i), fmt.Sprintf("sv%dh%d", net.subnet, i), fmt.Sprintf("sv%dn%d", net.subnet, i)
		net.nss = append(net.nss, ns)
		net.must("netns", "add", ns)
		net.must("link", "add", host, "type", "veth", "peer", "name", inner)
		net.must("link", "set", inner, "netns", ns)
		net.must("link", "set", host, "master", net.bridge)
		net.must("link", "set", host, "up")
		net.must("netns", "exec", ns, "ip", "addr", "add", net.addr(i)+"/24", "dev", inner)
		net.must("netns", "exec", ns, "ip", "link", "set", inner, "up")
		net.must("netns", "exec", ns, "ip", "link", "set", "lo", "up")
	}
	c := start(t, n, func(i int) (string, string, string, string) {
		ip := net.addr(i)
		return ip + ":9092", ip + ":9093", ip + ":9644", net.nss[i-1]
	}, net.remove, extra)
	c.net = net
	return c
}

func (n *isolatedNet) addr(host int) string { return fmt.Sprintf("10.254.%d.%d", n.subnet, host) }

// ip runs `ip args...`.
func (n *isolatedNet) ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (n *isolatedNet) must(args ...string) {
	n.t.Helper()
	if err := n.ip(args...); err != nil {
		n.remove()
		n.t.Fatal(err)
	}
}

// remove deletes the namespaces (their veth ends go with them) and the
// bridge.
func (n *isolatedNet) remove() {
	for _, ns := range n.nss {
		_ = n.ip("netns", "del", ns)
	}
	_ = n.ip("link", "del", n.bridge)
}

// Partition cuts the node off from every other node, both ways (a
// blackhole route in each namespace), as a network partition does; the
// test process still reaches it. Only for a cluster from StartIsolated.
func (c *Cluster) Partition(id uint64) { c.routes(id, "add") }

// Heal undoes Partition.
func (c *Cluster) Heal(id uint64) { c.routes(id, "del") }

func (c *Cluster) routes(id uint64, op string) {
	n := c.net
	if n == nil {
		panic("testcluster: Partition and Heal need a cluster from StartIsolated")
	}
	n.t.Helper()
	for j := range c.Nodes {
		other := uint64(j + 1)
		if other == id {
			continue
		}
		for _, r := range [][2]uint64{{id, other}, {other, id}} {
			if err := n.ip("netns", "exec", n.nss[r[0]-1], "ip", "route", op, "blackhole", n.addr(int(r[1]))+"/32"); err != nil {
				n.t.Fatal(err)
			}
		}
	}
}
