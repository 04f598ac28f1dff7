package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain doubles as the load tool's callee: the interop test starts this
// test binary with "-role callee", as the tool starts itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "-role" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}
