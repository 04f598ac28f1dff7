package cluster

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// entryCases are stored entries as another process may have left them.
var entryCases = []struct {
	name, key, data string
	ok              bool
}{
	{"full", callKey("c1"), `{"id":"c1","node":"n1","status":"ESTABLISHED","final":true,"reason":"r","streamHash":"` + streamHash("s") + `","name":"n","pushes":["p"],"object":{"a":1}}`, true},
	{"minimal", callKey("c1"), `{"id":"c1"}`, true},
	{"odd id", callKey("a/b c.>"), `{"id":"a/b c.>"}`, true},
	{"unknown fields", callKey("c1"), `{"id":"c1","future":[1,2]}`, true},
	{"other id", callKey("c1"), `{"id":"c2"}`, false},
	{"no id", callKey("c1"), `{}`, false},
	{"not json", callKey("c1"), `garbage`, false},
	{"truncated", callKey("c1"), `{"id":"c1","node":`, false},
	{"bad hash", callKey("c1"), `{"id":"c1","streamHash":"rtmp://h/live/key"}`, false},
	{"wrong type", callKey("c1"), `{"id":"c1","pushes":"p"}`, false},
	{"claim key", "name." + "YQ", `{"id":"a"}`, false},
	{"bad base64", "call.***", `{"id":"a"}`, false},
	{"empty key", "call.", `{"id":""}`, false},
}

func TestDecodeEntry(t *testing.T) {
	for _, tc := range entryCases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := decodeEntry(tc.key, []byte(tc.data), 7)
			if !tc.ok {
				require.Error(t, err)
				require.NotContains(t, err.Error(), "rtmp://", "an error never echoes a stream")
				return
			}
			require.NoError(t, err)
			require.Equal(t, uint64(7), c.Revision)
			id, _ := decodeCallKey(tc.key)
			require.Equal(t, id, c.ID)
		})
	}
	// What encodeEntry writes decodes to the same call, without Stream.
	in := Call{ID: "x y", Node: "n", Status: "S", Final: true, Reason: "why", Stream: "rtmp://h/live/secret",
		StreamHash: streamHash("rtmp://h/live/secret"), Name: "nm", Pushes: []string{"p1"},
		Object: json.RawMessage(`{"callId":"x y"}`), Revision: 3}
	data, err := encodeEntry(in)
	require.NoError(t, err)
	require.NotContains(t, string(data), "secret", "Stream is never stored")
	out, err := decodeEntry(callKey(in.ID), data, 9)
	require.NoError(t, err)
	in.Stream, in.Revision = "", 9
	require.Equal(t, in, out)
}

// FuzzDecodeEntry feeds decodeEntry what a shared bucket may hold: it
// never panics, and what it accepts is consistent with its key and
// survives a round trip.
func FuzzDecodeEntry(f *testing.F) {
	for _, tc := range entryCases {
		f.Add(tc.key, []byte(tc.data))
	}
	f.Fuzz(func(t *testing.T, key string, data []byte) {
		c, err := decodeEntry(key, data, 5)
		if err != nil {
			return
		}
		id, kerr := decodeCallKey(key)
		if kerr != nil || id != c.ID || c.ID == "" {
			t.Fatalf("key %q gave call %q", key, c.ID)
		}
		if c.Revision != 5 || c.Stream != "" {
			t.Fatalf("revision %d, stream %q", c.Revision, c.Stream)
		}
		if c.StreamHash != "" && !isHexHash(c.StreamHash) {
			t.Fatalf("stream hash %q", c.StreamHash)
		}
		again, err := encodeEntry(c)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		c2, err := decodeEntry(callKey(c.ID), again, 5)
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if c2.ID != c.ID || c2.Node != c.Node || c2.Status != c.Status || c2.Name != c.Name ||
			c2.StreamHash != c.StreamHash || c2.Final != c.Final || len(c2.Pushes) != len(c.Pushes) {
			t.Fatalf("round trip: %+v != %+v", c2, c)
		}
	})
}
