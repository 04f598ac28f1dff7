package callmgr

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// recordingMetaCases are RecordingMeta files and what they decode to ("" err:
// accepted).
var recordingMetaCases = []struct {
	in   string
	want RecordingMeta
	err  string
}{
	{in: `{"callId":"c1","toStream":"s","started":1733640000000,"durationMs":61000,"format":"mp4"}`,
		want: RecordingMeta{CallID: "c1", ToStream: "s", Started: 1733640000000, DurationMs: 61000, Format: "mp4"}},
	{in: `{"callId":"c1"}`, want: RecordingMeta{CallID: "c1"}},
	{in: `{}`},
	{in: `{"durationMs":-1}`, err: "negative"},
	{in: `{"started":-5}`, err: "negative"},
	{in: `{"started":"x"}`, err: "recording meta"},
	{in: `[1]`, err: "recording meta"},
	{in: ``, err: "recording meta"},
	{in: `{"callId":"` + strings.Repeat("a", maxRecordingMeta) + `"}`, err: "too large"},
}

func TestParseRecordingMeta(t *testing.T) {
	for _, tc := range recordingMetaCases {
		got, err := parseRecordingMeta([]byte(tc.in))
		if tc.err != "" {
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got)
	}
}

// FuzzRecordingMeta: never a panic; what is accepted has no negative time
// and survives a round trip.
func FuzzRecordingMeta(f *testing.F) {
	for _, tc := range recordingMetaCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseRecordingMeta(b)
		if err != nil {
			return
		}
		if m.Started < 0 || m.DurationMs < 0 {
			t.Fatalf("negative time accepted: %+v", m)
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := parseRecordingMeta(out)
		if err != nil && len(out) <= maxRecordingMeta {
			t.Fatalf("round trip of %s: %v", out, err)
		}
		if err == nil && back != m {
			t.Fatalf("round trip changed %+v to %+v", m, back)
		}
	})
}
