// Command samsa is Samsa's one binary: the broker (samsa serve), the
// pipeline runner (samsa run) and the command-line client (topics, produce,
// consume, groups, bench). Each command group lives in its own file.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "samsa:", err)
		os.Exit(1)
	}
}
