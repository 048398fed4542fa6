package main

import (
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"
)

// TestHelpTexts holds every command to the rule: a one-line summary, a
// description and an example each.
func TestHelpTexts(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			switch sub.Name() {
			case "help", "completion":
				continue // cobra's own
			}
			require.NotEmpty(t, sub.Short, sub.CommandPath())
			require.NotContains(t, sub.Short, "\n", sub.CommandPath())
			require.NotEmpty(t, sub.Long, sub.CommandPath())
			require.NotEmpty(t, sub.Example, sub.CommandPath())
			walk(sub)
		}
	}
	walk(newRoot())
}
