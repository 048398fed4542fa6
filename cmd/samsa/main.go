// Command samsa is Samsa's one binary: the broker (samsa serve), the
// pipeline runner (samsa run) and the command-line client (topics, produce,
// consume, groups, bench). Each command group lives in its own file.
package main

import (
	"fmt"
	"os"
)

// Exit codes: 0 success, 1 failure, 2 a usage mistake.
func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "samsa:", err)
		if isUsage(err) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
