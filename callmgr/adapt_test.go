package callmgr

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sip/sdp"
)

// TestRealSDPFanoutRecorder runs a call through the real sip/sdp, sink.Fanout
// and sink/record (Matroska), with the SIP peer, media session and RTMP sink
// faked.
func TestRealSDPFanoutRecorder(t *testing.T) {
	w := newFakeWorld()
	e := newTestEnv(t, func(c *Config) { c.backend = w.realBackend(); c.RecordFormat = "mkv" })
	e.w = w
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "real1", Callee: "answer@h", HasAudio: true, HasVideo: false,
		RTMPURL: "rtmp://127.0.0.1/live", RTMPStream: "s", Record: true})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))

	// The offer: real SDP, audio sendrecv, video recvonly, our ports.
	w.mu.Lock()
	offer := string(w.invites[0].Offer)
	w.mu.Unlock()
	sess := w.session("real1")
	require.NotNil(t, sess)
	assert.Contains(t, offer, "m=audio 40000 RTP/AVP")
	assert.Contains(t, offer, "m=video 40002 RTP/AVP")
	assert.Regexp(t, `(?s)m=audio.*a=sendrecv.*m=video.*a=recvonly`, offer)
	assert.Contains(t, offer, "c=IN IP4 127.0.0.1")

	// The negotiated streams reached the session.
	sess.mu.Lock()
	specs := sess.specs[0]
	sess.mu.Unlock()
	require.Len(t, specs, 2)
	assert.Equal(t, media.CodecPCMA, specs[0].Formats[0].Codec)
	assert.Equal(t, media.SendRecv, specs[0].Direction)
	assert.Equal(t, media.CodecH264, specs[1].Formats[0].Codec)
	assert.Equal(t, media.RecvOnly, specs[1].Direction)
	assert.True(t, specs[1].Feedback.PLI)

	// Feed one second of the clip and of A-law audio.
	rt := w.rtmpSink("s")
	require.NotNil(t, rt)
	aus := testmedia.ClipAccessUnits()
	frames := 0
	for i, au := range aus[:50] {
		var avcc []byte
		for _, n := range au.NALUs {
			avcc = append(avcc, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
			avcc = append(avcc, n...)
		}
		pts := time.Duration(i) * 40 * time.Millisecond
		sess.frame(media.Frame{Codec: media.CodecH264, PTS: pts, DTS: pts, Keyframe: au.Keyframe, Payload: avcc, ClockRate: 90000})
		for k := 0; k < 2; k++ {
			apts := pts + time.Duration(k)*20*time.Millisecond
			sess.frame(media.Frame{Codec: media.CodecPCMA, PTS: apts, DTS: apts, Keyframe: true, Payload: bytes.Repeat([]byte{0xD5}, 160),
				ClockRate: 8000, Channels: 1, Duration: 20 * time.Millisecond})
		}
		frames += 3
	}
	require.True(t, waitFor(func() bool { f, _ := rt.snapshot(); return len(f) == frames }), "RTMP sink got every frame")

	// Hold and resume by real re-INVITEs.
	d := w.dialog("real1")
	hold, err := sdp.NewOffer(peerSDPConfig(media.SendOnly))
	require.NoError(t, err)
	ans, err := d.req.OnReinvite(hold.Marshal())
	require.NoError(t, err)
	assert.Contains(t, string(ans), "a=recvonly")
	assert.Equal(t, StatusHold, c.Info().Status)
	resume, err := sdp.NewOffer(peerSDPConfig(media.SendRecv))
	require.NoError(t, err)
	ans, err = d.req.OnReinvite(resume.Marshal())
	require.NoError(t, err)
	assert.Equal(t, StatusEstablished, c.Info().Status)
	assert.True(t, strings.Contains(string(ans), "o=- ") && strings.Contains(string(ans), " 3 IN IP4"), "o= version increased per answer:\n%s", ans)

	path := c.Info().RecordPath
	assert.True(t, strings.HasSuffix(path, ".mkv"), path)
	require.NoError(t, c.Terminate(ctx))
	waitDone(t, c)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Greater(t, len(b), 10000, "recording written")
	assert.Equal(t, []byte{0x1A, 0x45, 0xDF, 0xA3}, b[:4], "EBML header")
	assert.True(t, bytes.Contains(b, []byte("V_MPEG4/ISO/AVC")), "H.264 track")
	assert.True(t, bytes.Contains(b, []byte("A_MS/ACM")), "A-law track")
}

// TestRecordFormats records a call as FLV, and as MP4 (the default format),
// through the real recorders.
func TestRecordFormats(t *testing.T) {
	for _, tc := range []struct {
		format, ext string
		check       func(t *testing.T, b []byte)
	}{
		{"flv", ".flv", func(t *testing.T, b []byte) { assert.Equal(t, "FLV", string(b[:3])) }},
		{"", ".mp4", func(t *testing.T, b []byte) {
			assert.Equal(t, "ftyp", string(b[4:8]), "MP4 file type box")
			assert.True(t, bytes.Contains(b, []byte("avc1")), "H.264 track")
			assert.True(t, bytes.Contains(b, []byte("mp4a")), "AAC track (A-law transcoded)")
			assert.True(t, bytes.Contains(b, []byte("moof")), "a movie fragment")
		}},
	} {
		t.Run(tc.ext[1:], func(t *testing.T) {
			w := newFakeWorld()
			e := newTestEnv(t, func(c *Config) { c.backend = w.realBackend(); c.RecordFormat = tc.format })
			e.w = w
			ctx := ctxT(t)
			c, err := e.m.StartCall(ctx, CallParams{CallID: "rec1", Callee: "answer@h", Record: true})
			require.NoError(t, err)
			require.NoError(t, c.WaitEstablished(ctx))
			path := c.Info().RecordPath
			assert.True(t, strings.HasSuffix(path, tc.ext), path)
			sess := w.session("rec1")
			for i, au := range testmedia.ClipAccessUnits()[:50] {
				var avcc []byte
				for _, n := range au.NALUs {
					avcc = append(avcc, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
					avcc = append(avcc, n...)
				}
				pts := time.Duration(i) * 40 * time.Millisecond
				sess.frame(media.Frame{Codec: media.CodecH264, PTS: pts, DTS: pts, Keyframe: au.Keyframe, Payload: avcc, ClockRate: 90000})
				sess.frame(media.Frame{Codec: media.CodecPCMA, PTS: pts, DTS: pts, Keyframe: true, Payload: bytes.Repeat([]byte{0xD5}, 320),
					ClockRate: 8000, Channels: 1, Duration: 40 * time.Millisecond})
			}
			require.NoError(t, c.Terminate(ctx))
			waitDone(t, c)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Greater(t, len(b), 10000)
			tc.check(t, b)
		})
	}
}
