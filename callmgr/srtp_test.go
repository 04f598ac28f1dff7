package callmgr

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
)

func TestParseSRTPMode(t *testing.T) {
	for in, want := range map[string]SRTPMode{
		"": SRTPDefault, "off": SRTPOff, "OFF": SRTPOff, "false": SRTPOff, "0": SRTPOff, "no": SRTPOff,
		"optional": SRTPOptional, " Optional ": SRTPOptional,
		"required": SRTPRequired, "true": SRTPRequired, "1": SRTPRequired, "yes": SRTPRequired, "on": SRTPRequired,
	} {
		got, err := ParseSRTPMode(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := ParseSRTPMode("maybe")
	var pe *ParamError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, FieldSRTP, pe.Field)
}

func TestSRTPModeValidation(t *testing.T) {
	e := newTestEnv(t, nil)
	_, err := e.m.StartCall(ctxT(t), CallParams{Callee: "answer@h", SRTP: "sometimes"})
	require.ErrorIs(t, err, ErrInvalidParams)
	_, err = New(Config{ListenAddr: "127.0.0.1:0", SRTP: "sometimes", backend: newFakeWorld().backend()})
	require.Error(t, err)
}

// srtpCall places a call through the real sip/sdp to a fake peer that does
// peerMode with SRTP, and returns the call, the INVITEs' offers and the
// manager's log.
func srtpCall(t *testing.T, cfgMode, callMode SRTPMode, peerMode string) (*Call, []string, *testEnv) {
	t.Helper()
	w := newFakeWorld()
	w.peerSRTP = peerMode
	e := newTestEnv(t, func(c *Config) { c.backend = w.realBackend(); c.SRTP = cfgMode })
	e.w = w
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "srtp-" + string(callMode) + "-" + peerMode, Callee: "answer@h",
		HasAudio: true, SRTP: callMode})
	require.NoError(t, err)
	_ = c.WaitEstablished(ctx)
	w.mu.Lock()
	var offers []string
	for _, r := range w.invites {
		offers = append(offers, string(r.Offer))
	}
	w.mu.Unlock()
	return c, offers, e
}

// keysIn returns the base64 keys of the a=crypto lines of an SDP body.
func keysIn(sdp string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`a=crypto:\d+ \S+ inline:([A-Za-z0-9+/=]+)`).FindAllStringSubmatch(sdp, -1) {
		out = append(out, m[1])
	}
	return out
}

// noKeys checks that no key of the offers appears in the call's events and
// in the manager's log.
func noKeys(t *testing.T, e *testEnv, c *Call, offers []string) {
	t.Helper()
	var keys []string
	for _, o := range offers {
		keys = append(keys, keysIn(o)...)
	}
	var text bytes.Buffer
	for _, ev := range e.log.events(c.ID()) {
		fmt.Fprintf(&text, "%v %+v %#v\n", ev, ev, ev.Info)
	}
	text.WriteString(e.buf.String())
	fmt.Fprintf(&text, "%v %+v", c.Info(), c.Err())
	for _, k := range keys {
		raw, err := base64.StdEncoding.DecodeString(k)
		require.NoError(t, err)
		assert.NotContains(t, text.String(), k, "an SRTP key in events or logs")
		assert.False(t, bytes.Contains(text.Bytes(), raw), "raw SRTP key bytes in events or logs")
		assert.NotContains(t, text.String(), fmt.Sprintf("%x", raw))
		assert.NotContains(t, text.String(), fmt.Sprint(raw))
	}
}

func TestSRTPRequiredNegotiatesSDES(t *testing.T) {
	c, offers, e := srtpCall(t, SRTPOff, SRTPRequired, "sdes")
	require.Equal(t, StatusEstablished, c.Info().Status)
	require.Len(t, offers, 1)
	assert.Contains(t, offers[0], "m=audio 40000 RTP/SAVP")
	assert.Contains(t, offers[0], "m=video 40002 RTP/SAVP")
	require.Len(t, keysIn(offers[0]), 2, "one a=crypto per stream")
	info := c.Info()
	assert.True(t, info.Secure)
	assert.Equal(t, SRTPRequired, info.SRTP)
	assert.Empty(t, info.SRTPFallback)
	sess := e.w.session(c.ID())
	sess.mu.Lock()
	specs := sess.specs[0]
	sess.mu.Unlock()
	require.Len(t, specs, 2)
	for _, sp := range specs {
		require.NotNil(t, sp.Crypto, "%v", sp.Kind)
		assert.Equal(t, "AES_CM_128_HMAC_SHA1_80", sp.Crypto.Suite)
		assert.Len(t, sp.Crypto.LocalKey, 30)
		assert.Len(t, sp.Crypto.RemoteKey, 30)
	}
	// The answer's keys (the peer's) never reach logs or events either.
	noKeys(t, e, c, append(offers, string(e.w.dialog(c.ID()).answer)))
}

func TestSRTPConfigDefault(t *testing.T) {
	c, offers, _ := srtpCall(t, SRTPRequired, SRTPDefault, "sdes")
	require.Equal(t, StatusEstablished, c.Info().Status)
	assert.Contains(t, offers[0], "RTP/SAVP")
	assert.True(t, c.Info().Secure)
	assert.Equal(t, SRTPRequired, c.Info().SRTP)

	c, offers, _ = srtpCall(t, SRTPRequired, SRTPOff, "sdes")
	require.Equal(t, StatusEstablished, c.Info().Status)
	assert.NotContains(t, offers[0], "SAVP", "the call's own mode wins")
	assert.NotContains(t, offers[0], "a=crypto")
	assert.False(t, c.Info().Secure)
}

func TestSRTPRequiredRefused(t *testing.T) {
	for _, tc := range []struct {
		peer   string
		code   int
		reason string
	}{{"", 488, "Not Acceptable Here"}, {"415", 415, "Unsupported Media Type"}, {"plain", 488, "Not Acceptable Here"}} {
		t.Run("peer="+tc.peer, func(t *testing.T) {
			c, offers, e := srtpCall(t, SRTPOff, SRTPRequired, tc.peer)
			waitDone(t, c)
			info := c.Info()
			assert.Equal(t, StatusFailed, info.Status)
			assert.Equal(t, tc.code, info.SIPStatus)
			assert.Equal(t, tc.reason, info.SIPReason)
			assert.Len(t, offers, 1, "required never retries with plain RTP")
			assert.False(t, info.Secure)
			if tc.peer == "plain" {
				assert.ErrorIs(t, c.Err(), ErrNegotiation)
				var se *SIPError
				require.ErrorAs(t, c.Err(), &se)
				assert.Contains(t, se.Err.Error(), "SRTP offered, answered with RTP/AVP")
				assert.Equal(t, 1, e.w.dialog(c.ID()).byeCount(), "the answered call is hung up")
			}
			noKeys(t, e, c, offers)
		})
	}
}

func TestSRTPOptionalFallsBack(t *testing.T) {
	for _, tc := range []struct {
		peer     string
		invites  int
		fallback string
	}{{"", 2, "488 Not Acceptable Here"}, {"415", 2, "415 Unsupported Media Type"}, {"plain", 1, "SRTP offered, answered with RTP/AVP"}} {
		t.Run("peer="+tc.peer, func(t *testing.T) {
			c, offers, e := srtpCall(t, SRTPOff, SRTPOptional, tc.peer)
			info := c.Info()
			require.Equal(t, StatusEstablished, info.Status)
			require.Len(t, offers, tc.invites)
			assert.Contains(t, offers[0], "RTP/SAVP")
			if tc.invites == 2 {
				assert.NotContains(t, offers[1], "SAVP")
				assert.NotContains(t, offers[1], "a=crypto")
			}
			assert.False(t, info.Secure)
			assert.Contains(t, info.SRTPFallback, tc.fallback)
			// The ESTABLISHED event says so.
			var est *Event
			require.True(t, waitFor(func() bool {
				for _, ev := range e.log.events(c.ID()) {
					if ev.Type == EventCallStatus && ev.Status == StatusEstablished {
						est = &ev
						return true
					}
				}
				return false
			}), "an ESTABLISHED event")
			assert.Contains(t, est.Info.SRTPFallback, tc.fallback)
			assert.Contains(t, e.buf.String(), "plain RTP")
			sess := e.w.session(c.ID())
			sess.mu.Lock()
			for _, sp := range sess.specs[0] {
				assert.Nil(t, sp.Crypto)
			}
			sess.mu.Unlock()
			noKeys(t, e, c, offers)
		})
	}
	// A peer that does SRTP gets SRTP.
	c, _, _ := srtpCall(t, SRTPOff, SRTPOptional, "sdes")
	assert.True(t, c.Info().Secure)
	assert.Empty(t, c.Info().SRTPFallback)
}

// TestRecordQuotaKeepsCall records a call through the real recorder with a
// tiny quota: the recording stops, is reported, and the call goes on.
func TestRecordQuotaKeepsCall(t *testing.T) {
	w := newFakeWorld()
	e := newTestEnv(t, func(c *Config) { c.backend = w.realBackend(); c.RecordQuota = 100000 })
	e.w = w
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "quota1", Callee: "answer@h", HasAudio: true, Record: true,
		RTMPURL: "rtmp://127.0.0.1/live", RTMPStream: "q"})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	sess := w.session("quota1")
	aus := testmedia.ClipAccessUnits()
	n := 0
	for i := 0; i < 250; i++ { // 10 s of the clip (about 25 kB a second)
		au := aus[i%len(aus)]
		var avcc []byte
		for _, nal := range au.NALUs {
			avcc = append(avcc, byte(len(nal)>>24), byte(len(nal)>>16), byte(len(nal)>>8), byte(len(nal)))
			avcc = append(avcc, nal...)
		}
		pts := time.Duration(i) * 40 * time.Millisecond
		sess.frame(media.Frame{Codec: media.CodecH264, PTS: pts, DTS: pts, Keyframe: au.Keyframe, Payload: avcc, ClockRate: 90000})
		sess.frame(media.Frame{Codec: media.CodecPCMA, PTS: pts, DTS: pts, Keyframe: true, Payload: bytes.Repeat([]byte{0xD5}, 320),
			ClockRate: 8000, Channels: 1, Duration: 40 * time.Millisecond})
		n += 2
	}
	rec := func() (SinkInfo, bool) {
		for _, si := range c.Info().Sinks {
			if si.Kind == SinkKindRecord {
				return si, true
			}
		}
		return SinkInfo{}, false
	}
	require.True(t, waitFor(func() bool { si, ok := rec(); return ok && si.Status == SinkFailed }), "the recording stopped")
	si, _ := rec()
	assert.Equal(t, ReasonRecordQuota, si.Reason)
	assert.Contains(t, e.buf.String(), "quota reached")
	// The call and its RTMP leg go on.
	assert.Equal(t, StatusEstablished, c.Info().Status)
	rt := w.rtmpSink("q")
	require.True(t, waitFor(func() bool { f, _ := rt.snapshot(); return len(f) == n }), "RTMP got every frame")
	assert.True(t, waitFor(func() bool {
		for _, ev := range e.log.events("quota1") {
			if ev.Type == EventSinkStatus && ev.Sink.Kind == SinkKindRecord && ev.Sink.Reason == ReasonRecordQuota {
				return true
			}
		}
		return false
	}), "a sink event reports the quota")
	st, err := os.Stat(si.Path)
	require.NoError(t, err)
	assert.LessOrEqual(t, st.Size(), int64(100000))
	assert.Greater(t, st.Size(), int64(50000))
	require.NoError(t, c.Terminate(ctx))
	waitDone(t, c)
}
