package e2e

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: the Manager, its
// calls' media sessions and sinks, the WHEP viewers and the SIP peers must
// all have stopped theirs.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
