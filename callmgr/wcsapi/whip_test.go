package wcsapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/whip"
	"github.com/sipstream/sipstream/sip/siptest"
)

// whipPCMU publishes a PCMU track to url (POST with the offer, answer from
// the 201) and, until the test ends, sends a 1 kHz tone on it.
func whipPCMU(t *testing.T, url string) {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	me := &webrtc.MediaEngine{}
	require.NoError(t, me.RegisterDefaultCodecs())
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", "op")
	require.NoError(t, err)
	_, err = pc.AddTrack(track)
	require.NoError(t, err)
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	<-gathered
	code, answer, _ := do(t, http.MethodPost, url, "application/sdp", pc.LocalDescription().SDP, nil)
	require.Equal(t, http.StatusCreated, code, answer)
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = track.WriteSample(pionmedia.Sample{Data: g711.EncodeULaw(nil, testmedia.Tone(1000, 8000, i*160, 160, 0.5)), Duration: 20 * time.Millisecond})
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		_ = pc.GracefulClose()
	})
}

// TestInjectWHIP: with Config.WHIP, /call/inject_stream/startup plays a
// WebRTC publication into a call (the siptest callee hears its tone, the
// metrics count the publication and the injection);
// inject_sound replaces it and the subscription ends; injected again, the
// call's end ends the subscription too. A stream neither a call nor a
// publisher has is 404, and so is an unknown call.
func TestInjectWHIP(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "low.wav"), testmedia.WAV(testmedia.Tone(500, 8000, 0, 8000, 0.5), 8000), 0o644))
	relay := new(callmgr.Relay)
	m, err := callmgr.New(callmgr.Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 27400, RTPPortMax: 27499, OnEvent: relay.OnEvent})
	require.NoError(t, err)
	defer m.Close(context.Background())
	_, err = New(m, Config{Events: relay, WHIP: &whip.Config{MaxPublishers: -1}})
	require.ErrorContains(t, err, "whip")
	api, err := New(m, Config{Events: relay, NoAuth: true, SoundDir: dir,
		WHIP: &whip.Config{ICEIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}})
	require.NoError(t, err)
	defer api.Close()
	mux := http.NewServeMux()
	mux.Handle("/rest-api/", api)
	mux.Handle("/whip/", api.WHIP())
	ts := httptest.NewServer(mux)
	defer ts.Close()
	peer, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0", Script: siptest.Script{NoVideo: true}})
	require.NoError(t, err)
	defer peer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rest := func(path, body string) apiResult {
		t.Helper()
		return call(t, ts, "/rest-api"+path, body)
	}

	r := rest("/call/startup", `{"callId":"c1","callee":"`+peer.URI()+`","hasAudio":true,"hasVideo":false}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	pc, err := peer.WaitCall(ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		c, ok := m.Call("c1")
		return ok && c.Info().Status == callmgr.StatusEstablished
	}, 10*time.Second, 20*time.Millisecond)

	r = rest("/call/inject_stream/startup", `{"callId":"c1","streamName":"op1"}`)
	require.Equal(t, http.StatusNotFound, r.status, r.body)
	whipPCMU(t, ts.URL+"/whip/op1")
	r = rest("/call/inject_stream/startup", `{"callId":"nope","streamName":"op1"}`)
	require.Equal(t, http.StatusNotFound, r.status, r.body)

	heard := func(d time.Duration) []int16 {
		before := len(pc.ReceivedAudio())
		time.Sleep(d)
		got := pc.ReceivedAudio()[before:]
		return got[len(got)/4:]
	}
	r = rest("/call/inject_stream/startup", `{"callId":"c1","streamName":"op1"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	c, _ := m.Call("c1")
	require.Equal(t, "op1", c.Info().InjectedStream)
	require.Equal(t, 1, api.WHIP().Stats().Subscribers)
	reg := prometheus.NewRegistry()
	reg.MustRegister(api)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	gauges := map[string]float64{}
	for _, mf := range mfs {
		if m := mf.GetMetric(); len(m) == 1 && m[0].GetGauge() != nil {
			gauges[mf.GetName()] = m[0].GetGauge().GetValue()
		}
	}
	require.Equal(t, 1.0, gauges["sipstream_whip_publishers"])
	require.Equal(t, 1.0, gauges["sipstream_whip_injections"])
	tone := heard(1500 * time.Millisecond)
	g := testmedia.Goertzel(tone, 8000, 1000)
	t.Logf("Goertzel(1 kHz) while op1 is injected: %.3f over %d samples", g, len(tone))
	assert.Greater(t, g, 0.5)

	// inject_sound mixes with the publication, as with a call's stream;
	// its terminate leaves the publication playing.
	r = rest("/call/inject_sound", `{"callId":"c1","fileName":"low.wav","loop":true}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	mixed := heard(time.Second)
	assert.Greater(t, testmedia.Goertzel(mixed, 8000, 500), 0.2, "the file plays")
	assert.Greater(t, testmedia.Goertzel(mixed, 8000, 1000), 0.2, "with the publication")
	require.Equal(t, 1, api.WHIP().Stats().Subscribers)
	r = rest("/call/inject_sound/terminate", `{"callId":"c1"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	alone := heard(time.Second)
	assert.Greater(t, testmedia.Goertzel(alone, 8000, 1000), 0.5, "the publication alone")
	assert.Less(t, testmedia.Goertzel(alone, 8000, 500), 0.1)

	// Injected again, then terminate: silence.
	r = rest("/call/inject_stream/startup", `{"callId":"c1","streamName":"op1"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	assert.Greater(t, testmedia.Goertzel(heard(time.Second), 8000, 1000), 0.5)
	r = rest("/call/inject_stream/terminate", `{"callId":"c1"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, 0, api.WHIP().Stats().Subscribers)
	require.Equal(t, "", c.Info().InjectedStream)
	assert.Less(t, testmedia.Goertzel(heard(time.Second), 8000, 1000), 0.1, "silence after terminate")

	// Injected again, then the call ends: the subscription ends.
	r = rest("/call/inject_stream/startup", `{"callId":"c1","streamName":"op1"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, 1, api.WHIP().Stats().Subscribers)
	r = rest("/call/terminate", `{"callId":"c1"}`)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.NoError(t, pc.WaitBye(ctx))
	require.Eventually(t, func() bool { return api.WHIP().Stats().Subscribers == 0 }, 5*time.Second, 20*time.Millisecond)
	require.True(t, api.WHIP().Published("op1"), "the publication goes on")
}

// TestWHIPBehindGuard: mounted as the package doc says (Admin inside
// Guard), the WHIP endpoint needs the admin's login, answers a cross-origin
// page's preflight for POST and DELETE without one, and exposes Location
// to the allowed origin.
func TestWHIPBehindGuard(t *testing.T) {
	relay := new(callmgr.Relay)
	m, err := callmgr.New(callmgr.Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 27500, RTPPortMax: 27599, OnEvent: relay.OnEvent})
	require.NoError(t, err)
	defer m.Close(context.Background())
	api, err := New(m, Config{Events: relay, User: "admin", Password: "pw-123456", CORSOrigins: []string{"https://op.example"},
		WHIP: &whip.Config{ICEIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}})
	require.NoError(t, err)
	defer api.Close()
	mux := http.NewServeMux()
	mux.Handle("/whip/", api.Admin(api.WHIP()))
	ts := httptest.NewServer(api.Guard(mux))
	defer ts.Close()
	origin := map[string]string{"Origin": "https://op.example"}

	code, _, h := do(t, http.MethodOptions, ts.URL+"/whip/op1", "", "", map[string]string{
		"Origin": "https://op.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"})
	require.Equal(t, http.StatusNoContent, code)
	require.Contains(t, h.Get("Access-Control-Allow-Methods"), "POST")
	require.Contains(t, h.Get("Access-Control-Allow-Methods"), "DELETE")
	require.Equal(t, "https://op.example", h.Get("Access-Control-Allow-Origin"))

	code, _, _ = do(t, http.MethodPost, ts.URL+"/whip/op1", "application/sdp", "v=0\r\n", origin)
	require.Equal(t, http.StatusUnauthorized, code, "no login")
	code, _, _ = do(t, http.MethodPost, ts.URL+"/whip/op1", "application/sdp", "v=0\r\n", map[string]string{"Origin": "https://evil.example"})
	require.Equal(t, http.StatusForbidden, code, "an origin not allowed")
	code, body, h := do(t, http.MethodPost, withAuth(ts.URL, "admin", "pw-123456")+"/whip/op1", "application/sdp", "v=0\r\n", origin)
	require.Equal(t, http.StatusBadRequest, code, "with the login, the offer reaches the WHIP server: %s", body)
	require.Contains(t, h.Get("Access-Control-Expose-Headers"), "Location")
}
