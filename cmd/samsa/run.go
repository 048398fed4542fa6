package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/samsa-io/samsa/engine"
	"github.com/spf13/cobra"
)

func newRun() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a pipeline on an embedded single node",
		Long: `Run a pipeline file on a node started in the same process: the pipeline's
topics are served over Kafka while it runs, so apps and the CLI can read them.
It takes serve's flags. Stopped (SIGINT, SIGTERM) or killed, it resumes where
it stopped when run again with the same --data-dir: no record lost, none
stored twice.`,
		Example: `  samsa run examples/quickstart/pipeline.yaml
  samsa run pipeline.yaml --data-dir /tmp/samsa --kafka-addr 127.0.0.1:19092 --http-addr 127.0.0.1:19644`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			data, err := os.ReadFile(a[0])
			if err != nil {
				return usageError{err}
			}
			return f.serve(cmd, func(ctx context.Context, n *engine.Node) error {
				st, err := n.Pipelines().Apply(ctx, a[0], "", data)
				if err != nil {
					return err
				}
				printRunning(cmd, n, a[0], st.Name)
				return nil
			})
		},
	}
	f.register(cmd.Flags())
	return cmd
}

// printRunning tells where to look once a pipeline runs.
func printRunning(cmd *cobra.Command, n *engine.Node, file, name string) {
	st, _ := n.Pipelines().Status(name)
	w := cmd.ErrOrStderr()
	brokers := ""
	if n.KafkaAddr() != defaultBrokers {
		brokers = " --brokers " + n.KafkaAddr()
	}
	admin := ""
	if n.HTTPAddr() != defaultAdmin {
		admin = " --admin " + n.HTTPAddr()
	}
	fmt.Fprintf(w, "pipeline %s from %s is running; stop with Ctrl-C.\n", name, filepath.Base(file))
	fmt.Fprintf(w, "  records:       samsa consume %s --from-beginning%s\n", st.Topic, brokers)
	fmt.Fprintf(w, "  dead letters:  samsa consume %s.dlq --from-beginning --format '%%h  %%v'%s\n", st.Topic, brokers)
	fmt.Fprintf(w, "  status:        samsa pipelines status %s%s\n", name, admin)
}
