package kafka_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/samsa-io/samsa/engine"
	"github.com/stretchr/testify/require"
)

// TestKcat runs scripts/kcat-smoke.sh (librdkafka through kcat) against a
// real node. .ci/run installs kcat; without it the test is skipped.
func TestKcat(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat is not installed (apt-get install -y kcat; .ci/run does it)")
	}
	n := startNode(t, func(c *engine.Config) { c.AutoCreateTopics = true })
	cmd := exec.Command("../../scripts/kcat-smoke.sh", n.KafkaAddr(), "smoke")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Run())
}
