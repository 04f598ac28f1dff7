package wcsapi

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
)

// The product's documented objects, copied from wcs-docs/001_05a8a93799ac6b77.txt
// ("Stream capturing from a SIP call"): testdata/wcs-docs-001-call-find.json is
// the /call/find (and /call/find_all) response example.

// jsonField is one member of a JSON object: its name, JSON type ("null",
// "bool", "number", "string", "object", "array") and value.
type jsonField struct {
	Name, Type string
	Value      any
}

// jsonFields returns the members of the JSON object b, in order.
func jsonFields(t *testing.T, b []byte) []jsonField {
	t.Helper()
	var order []string
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	require.NoError(t, err)
	require.Equal(t, json.Delim('{'), tok, "%s", b)
	for dec.More() {
		k, err := dec.Token()
		require.NoError(t, err)
		order = append(order, k.(string))
		var skip json.RawMessage
		require.NoError(t, dec.Decode(&skip))
	}
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	out := make([]jsonField, 0, len(order))
	for _, k := range order {
		v := m[k]
		typ := "null"
		switch v.(type) {
		case bool:
			typ = "bool"
		case float64:
			typ = "number"
		case string:
			typ = "string"
		case map[string]any:
			typ = "object"
		case []any:
			typ = "array"
		}
		out = append(out, jsonField{k, typ, v})
	}
	return out
}

// docObject is the first object of the documented list in testdata file.
func docObject(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var list []json.RawMessage
	if json.Unmarshal(b, &list) == nil {
		require.NotEmpty(t, list)
		return list[0]
	}
	return b
}

// sipstreamCallFields are the members sipstream adds to the product's call
// object (left out when empty).
var sipstreamCallFields = map[string]bool{
	"sipMessage": true, "rtmpStreamStatusInfo": true, "sipLogin": true, "sipDomain": true,
	"recordPath": true, "info": true, "startTime": true, "duration": true, "mediaStats": true,
	"srtp": true, "secure": true, "srtpFallback": true,
}

// TestCallObjectMatchesProduct: a call like the documented one (no RTMP
// leg, no toStream, no appKey, no node id) has the documented members, in
// the documented order, with the documented types, nulls and values.
func TestCallObjectMatchesProduct(t *testing.T) {
	doc := jsonFields(t, docObject(t, "testdata/wcs-docs-001-call-find.json"))
	ci := callmgr.CallInfo{
		CallID: "R08NQya-5NMe5v7q-JNkboaS-CGm1Fi", ToStream: "R08NQya-5NMe5v7q-JNkboaS-CGm1Fi", ToStreamDefaulted: true,
		Status: callmgr.StatusEstablished, SIPStatus: 200,
		Caller: "001", Callee: "002", HasAudio: true, VisibleName: "001",
	}
	b, err := json.Marshal(callObjectOf(ci, "", time.Now))
	require.NoError(t, err)
	ours := jsonFields(t, b)
	var product []jsonField
	for _, f := range ours {
		if !sipstreamCallFields[f.Name] {
			product = append(product, f)
		}
	}
	require.Equal(t, doc, product, "ours: %s", b)

	// A toStream the client gave is reported, even when it equals the callId.
	given := ci
	given.ToStreamDefaulted = false
	b, err = json.Marshal(callObjectOf(given, "", time.Now))
	require.NoError(t, err)
	require.Contains(t, string(b), `"streamName":"R08NQya-5NMe5v7q-JNkboaS-CGm1Fi"`)

	// /call/find and /call/find_all answer the same objects.
	b, err = json.Marshal([]Call{callObjectOf(ci, "", time.Now)})
	require.NoError(t, err)
	var list []json.RawMessage
	require.NoError(t, json.Unmarshal(b, &list))
	require.Len(t, list, 1)
}

// TestCallObjectTypes: with a value, each nullable member has the product's
// type; sipstream's members keep their names and types.
func TestCallObjectTypes(t *testing.T) {
	ci := callmgr.CallInfo{
		CallID: "c1", ToStream: "show", RTMPURL: "rtmp://h/live", RTMPStream: "key",
		RTMPStatus: callmgr.SinkActive, Status: callmgr.StatusEstablished, SIPStatus: 200, SIPReason: "OK",
		Caller: "1000", Callee: "1001", HasAudio: true, HasVideo: true, AppKey: "defaultApp",
		SIPLogin: "1000", SIPDomain: "pbx", Started: time.Unix(100, 0), Established: time.Unix(101, 0),
	}
	now := func() time.Time { return time.Unix(103, 0) }
	b, err := json.Marshal(callObjectOf(ci, "node-1", now))
	require.NoError(t, err)
	types := map[string]string{}
	values := map[string]any{}
	for _, f := range jsonFields(t, b) {
		types[f.Name], values[f.Name] = f.Type, f.Value
	}
	for name, want := range map[string]string{
		"custom": "object", "nodeId": "string", "appKey": "string", "sessionId": "null",
		"callId": "string", "parentCallId": "null", "incoming": "bool", "status": "string",
		"sipStatus": "number", "rtmpUrl": "string", "rtmpStream": "string", "streamName": "string",
		"rtmpStreamStatus": "string", "caller": "string", "callee": "string", "hasAudio": "bool",
		"hasVideo": "bool", "sdp": "null", "visibleName": "null", "inviteParameters": "null",
		"mediaProvider": "string", "sipMessageRaw": "null", "isMsrp": "bool", "target": "null",
		"holdForTransfer": "bool",
		"sipMessage":      "string", "sipLogin": "string", "sipDomain": "string",
		"startTime": "number", "duration": "number",
	} {
		require.Equal(t, want, types[name], "%s in %s", name, b)
	}
	require.Equal(t, "node-1", values["nodeId"])
	require.Equal(t, "show", values["streamName"])
	require.Equal(t, "RTMP_STREAM_ACTIVE", values["rtmpStreamStatus"])
	require.Equal(t, "Flash", values["mediaProvider"])
	require.Equal(t, false, values["isMsrp"])
	require.Equal(t, float64(2000), values["duration"])

	// A Call decodes back (null members become empty strings).
	var back Call
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, "show", back.StreamName)
	require.Equal(t, "", back.SessionID)
}

// TestCallObjectSSENulls: the event stream's copy drops rtmpStream to null,
// it is not left out.
func TestCallObjectSSENulls(t *testing.T) {
	s := newServer(nil, serverOptions{})
	c := s.publicCall(Call{CallID: "c1", RTMPURL: "rtmp://u:p@h/live", RTMPStream: "KEY"})
	b, err := json.Marshal(c)
	require.NoError(t, err)
	require.Contains(t, string(b), `"rtmpStream":null`)
	require.Contains(t, string(b), `"rtmpUrl":"rtmp://h/live"`)
	require.NotContains(t, string(b), "KEY")
}
