package main

import (
	"testing"

	"go.uber.org/goleak"
)

// afterTests run once every test has finished (removing shared temporary
// files), before the goroutine leak check.
var afterTests []func()

type runThenCleanup struct{ m *testing.M }

func (r runThenCleanup) Run() int {
	code := r.m.Run()
	for _, f := range afterTests {
		f()
	}
	return code
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(runThenCleanup{m})
}
