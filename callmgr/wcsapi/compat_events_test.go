package wcsapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
)

// testdata/wcs-docs-001-call-status-event.json is the first CallStatusEvent
// example (TRYING, RTMP_STREAM_WAIT) of wcs-docs/001_05a8a93799ac6b77.txt
// ("Stream capturing from a SIP call", "Additional status information").

// sipstreamEventFields are the members sipstream adds to the product's
// CallStatusEvent.
var sipstreamEventFields = map[string]bool{
	"type": true, "sipMessage": true, "mediaSessionId": true, "info": true, "timestamp": true,
}

// eventsOf runs callmgr events through a managerService and returns what it
// hands the server.
func eventsOf(t *testing.T, secrets bool, evs ...callmgr.Event) []StatusEvent {
	t.Helper()
	s := &managerService{nodeID: "node-1", webhookSecrets: secrets, now: time.Now}
	var out []StatusEvent
	fn := func(ev StatusEvent, _ Call) { out = append(out, ev) }
	s.notify.Store(&fn)
	for _, ev := range evs {
		s.onEvent(ev)
	}
	return out
}

var docCallInfo = callmgr.CallInfo{
	CallID: "Xq2tlLcX89tTjaji_3", ToStream: "Xq2tlLcX89tTjaji_3", AppKey: "callApp",
	Status: callmgr.StatusTrying, SIPStatus: 100, RTMPURL: "rtmp://rtmp.flashphoner.com:1935/live",
	RTMPStream: "streamName2", RTMPStatus: callmgr.SinkWait, Caller: "3000", Callee: "3002",
	HasAudio: true, HasVideo: true, VisibleName: "3000",
}

// TestCallStatusEventMatchesProduct: the webhook body of a call like the
// documented one has the documented members in the documented order, with
// the documented types and values, but for sessionId (sipstream's REST
// calls have no client session: null) and nodeId (Config.NodeID).
func TestCallStatusEventMatchesProduct(t *testing.T) {
	doc := jsonFields(t, docObject(t, "testdata/wcs-docs-001-call-status-event.json"))
	evs := eventsOf(t, true, callmgr.Event{Type: callmgr.EventCallStatus, CallID: docCallInfo.CallID,
		Status: callmgr.StatusTrying, SIPStatus: 100, Info: docCallInfo, Time: time.Unix(1, 0)})
	require.Len(t, evs, 1)
	b, err := json.Marshal(evs[0])
	require.NoError(t, err)
	var ours []jsonField
	for _, f := range jsonFields(t, b) {
		if !sipstreamEventFields[f.Name] {
			ours = append(ours, f)
		}
	}
	require.Len(t, ours, len(doc), "%s", b)
	for i, want := range doc {
		got := ours[i]
		require.Equal(t, want.Name, got.Name, "%s", b)
		switch want.Name {
		case "sessionId":
			require.Equal(t, "null", got.Type)
		case "nodeId":
			require.Equal(t, jsonField{"nodeId", "string", "node-1"}, got)
		default:
			require.Equal(t, want, got)
		}
	}
	require.Contains(t, string(b), `"type":"CallStatusEvent"`)
}

// TestCallStatusEventRTMPLeg: a change of the call's own RTMP leg is a
// CallStatusEvent with the call's status and the leg's new state (wcs-docs
// 001: "ESTABLISHED, RTMP_CONNECTION_LOST"); a push is sipstream's
// RtmpStatusEvent; the stream key is redacted unless WebhookSecrets; a call
// without an RTMP leg has null RTMP members.
func TestCallStatusEventRTMPLeg(t *testing.T) {
	ci := docCallInfo
	ci.Status, ci.SIPStatus, ci.RTMPStatus = callmgr.StatusEstablished, 200, callmgr.SinkActive
	leg := callmgr.SinkInfo{ID: ci.CallID + "/rtmp", CallID: ci.CallID, Kind: callmgr.SinkKindRTMP, Primary: true,
		RTMPURL: ci.RTMPURL, RTMPStream: ci.RTMPStream, Status: callmgr.SinkLost}
	push := callmgr.SinkInfo{ID: "push-1", CallID: ci.CallID, Kind: callmgr.SinkKindRTMP,
		RTMPURL: "rtmp://other/live", RTMPStream: "rtmp_show", Status: callmgr.SinkActive}
	for _, secrets := range []bool{false, true} {
		evs := eventsOf(t, secrets,
			callmgr.Event{Type: callmgr.EventSinkStatus, CallID: ci.CallID, Info: ci, Sink: leg},
			callmgr.Event{Type: callmgr.EventSinkStatus, CallID: ci.CallID, Info: ci, Sink: push},
			callmgr.Event{Type: callmgr.EventSinkStatus, CallID: ci.CallID, Info: ci, Sink: leg, Removed: true},
		)
		require.Len(t, evs, 2, "the removed leg is not reported: the call's FINISH is")
		key, pushKey := "***", "***"
		if secrets {
			key, pushKey = "streamName2", "rtmp_show"
		}
		require.Equal(t, StatusEvent{Type: "CallStatusEvent", NodeID: "node-1", AppKey: "callApp", CallID: ci.CallID,
			Status: "ESTABLISHED", SIPStatus: 200, RTMPURL: ci.RTMPURL, RTMPStream: key,
			RTMPStreamStatus: "RTMP_CONNECTION_LOST", Caller: "3000", Callee: "3002", HasAudio: true, HasVideo: true,
			VisibleName: "3000", MediaProvider: "Flash", Timestamp: evs[0].Timestamp}, evs[0])
		require.Equal(t, "RtmpStatusEvent", evs[1].Type)
		require.Equal(t, "push-1", evs[1].MediaSessionID)
		require.Equal(t, "RTMP_STREAM_ACTIVE", evs[1].RTMPStreamStatus)
		require.Equal(t, pushKey, evs[1].RTMPStream)
	}

	noLeg := callmgr.CallInfo{CallID: "c2", Status: callmgr.StatusRing, SIPStatus: 180, Caller: "a", Callee: "b"}
	evs := eventsOf(t, false, callmgr.Event{Type: callmgr.EventCallStatus, CallID: "c2", Status: callmgr.StatusRing, Info: noLeg})
	b, err := json.Marshal(evs[0])
	require.NoError(t, err)
	for _, null := range []string{"appKey", "sessionId", "rtmpUrl", "rtmpStream", "rtmpStreamStatus", "visibleName"} {
		require.Contains(t, string(b), `"`+null+`":null`)
	}
}

// hookServer records the paths and bodies POSTed to it.
type hookServer struct {
	*httptest.Server
	mu    sync.Mutex
	paths []string
	evs   []StatusEvent
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev StatusEvent
		_ = json.Unmarshal(b, &ev)
		h.mu.Lock()
		h.paths = append(h.paths, r.Method+" "+r.URL.RequestURI())
		h.evs = append(h.evs, ev)
		h.mu.Unlock()
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.paths...)
}

// TestWebhookRoutesByAppKey: events go to their appKey's hook, else to the
// default one, at base URL + "/" + the event's name.
func TestWebhookRoutesByAppKey(t *testing.T) {
	def, app := newHookServer(t), newHookServer(t)
	h := newWebhooks(def.URL+"/hooks/", map[string]string{"sales": app.URL + "/sales?token=t1"}, nil, 0)
	require.True(t, h.post(StatusEvent{CallID: "c1", AppKey: "sales", Status: "RING"}))
	require.True(t, h.post(StatusEvent{Type: "RtmpStatusEvent", CallID: "c1", AppKey: "sales", Status: "RING"}))
	require.True(t, h.post(StatusEvent{Type: "CallStatusEvent", CallID: "c2", AppKey: "defaultApp", Status: "RING"}))
	require.True(t, h.post(StatusEvent{CallID: "c3", Status: "RING"}))
	h.close()
	require.Equal(t, []string{"POST /sales/CallStatusEvent?token=t1", "POST /sales/RtmpStatusEvent?token=t1"}, app.got())
	require.Equal(t, []string{"POST /hooks/CallStatusEvent", "POST /hooks/CallStatusEvent"}, def.got())
	require.Equal(t, "c2", def.evs[0].CallID)

	// Without a default hook, other applications' events go nowhere.
	only := newWebhooks("", map[string]string{"sales": app.URL}, nil, 0)
	require.False(t, only.post(StatusEvent{CallID: "c4", AppKey: "other"}))
	require.True(t, only.post(StatusEvent{CallID: "c5", AppKey: "sales"}))
	only.close()
	require.Contains(t, app.got(), "POST /CallStatusEvent")
}

// TestNewAppWebhooks: New checks AppWebhooks and routes through them.
func TestNewAppWebhooks(t *testing.T) {
	relay := new(callmgr.Relay)
	m, err := callmgr.New(callmgr.Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 27200, RTPPortMax: 27299, OnEvent: relay.OnEvent})
	require.NoError(t, err)
	defer m.Close(context.Background())
	_, err = New(m, Config{Events: relay, AppWebhooks: map[string]string{"a": "ftp://x"}})
	require.ErrorContains(t, err, `AppWebhooks["a"]`)
	_, err = New(m, Config{Events: relay, AppWebhooks: map[string]string{"": "http://x"}})
	require.ErrorContains(t, err, "empty appKey")

	app := newHookServer(t)
	api, err := New(m, Config{Events: relay, AppWebhooks: map[string]string{"a": app.URL}, NodeID: "n1"})
	require.NoError(t, err)
	api.srv.notify(StatusEvent{CallID: "c1", AppKey: "a", Status: "RING"}, Call{CallID: "c1"})
	require.NoError(t, api.Close())
	require.Equal(t, []string{"POST /CallStatusEvent"}, app.got())
}
