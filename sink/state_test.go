package sink_test

import (
	"testing"

	"github.com/sipstream/sipstream/sink"
)

func TestStateString(t *testing.T) {
	for st, want := range map[sink.State]string{
		sink.StateNone: "none", sink.StateWait: "wait", sink.StateActive: "active",
		sink.StateLost: "lost", sink.StateFailed: "failed", sink.State(9): "State(9)",
	} {
		if got := st.String(); got != want {
			t.Errorf("%d: %q, want %q", uint8(st), got, want)
		}
	}
	if !sink.StateFailed.Final() || sink.StateLost.Final() {
		t.Error("only Failed is final")
	}
}
