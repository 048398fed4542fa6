package main

import (
	"errors"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time (-ldflags "-X main.version=..."); otherwise
// it comes from the module's build information.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "dev"
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "samsa",
		Short:         "A Kafka-compatible broker on a Raft-replicated log, and a pipeline runner",
		Version:       buildVersion(),
		SilenceUsage:  true,
		SilenceErrors: true,
		// SuggestionsFor applies no distance unless one is set.
		SuggestionsMinimumDistance: 2,
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return usageError{err} })
	// An unknown command is a usage mistake (exit 2), with cobra's
	// suggestion of a near name.
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if near := cmd.SuggestionsFor(args[0]); len(near) > 0 {
			msg += "; did you mean " + strings.Join(near, " or ") + "?"
		}
		return usageError{errors.New(msg)}
	}
	root.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	root.AddCommand(newServe(), newRun(), newDev())
	g := addGlobals(root)
	root.AddCommand(newTopics(g), newProduce(g), newConsume(g), newGroups(g), newCluster(g), newBench(g), newPipelines(g))
	return root
}
