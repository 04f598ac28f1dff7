package callmgr

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/rtmp"
	"github.com/sipstream/sipstream/rtmp/flv"
	"github.com/sipstream/sipstream/sip/siptest"
)

// rtmpServer starts our rtmp.Server on a loopback port and returns its
// rtmp:// URL for app "live".
func rtmpServer(t *testing.T) (*rtmp.Server, string) {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	srv, done := serveRTMP(t, l)
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return srv, "rtmp://" + l.Addr().String() + "/live"
}

// serveRTMP serves our rtmp.Server on l; done is closed when Serve
// returned (after the server's Close).
func serveRTMP(t *testing.T, l net.Listener) (srv *rtmp.Server, done chan struct{}) {
	t.Helper()
	srv, err := rtmp.NewServer(rtmp.ServerConfig{})
	require.NoError(t, err)
	done = make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	return srv, done
}

type publishedStream struct {
	videoSeq, audioSeq      bool
	video, keyframes, audio int
	firstVideoKey           bool
	videoTS, audioTS        []uint32
	audioFormat             uint8
	pcm                     []int16
}

// readPublished reads tags until it has seen dur of video, or the stream
// ends.
func readPublished(ctx context.Context, t *testing.T, sub *rtmp.Subscription, dur time.Duration) publishedStream {
	t.Helper()
	var ps publishedStream
	for {
		tag, err := sub.ReadTag(ctx)
		if errors.Is(err, io.EOF) {
			return ps
		}
		require.NoError(t, err)
		switch tag.Type {
		case 9:
			v, err := flv.ParseVideo(tag.Data)
			require.NoError(t, err)
			if v.SequenceHeader() {
				ps.videoSeq = true
				continue
			}
			if ps.video == 0 {
				ps.firstVideoKey = v.Keyframe()
			}
			ps.video++
			if v.Keyframe() {
				ps.keyframes++
			}
			ps.videoTS = append(ps.videoTS, tag.Timestamp)
		case 8:
			a, err := flv.ParseAudio(tag.Data)
			require.NoError(t, err)
			ps.audioFormat = a.Format
			if a.SequenceHeader() {
				ps.audioSeq = true
				continue
			}
			ps.audio++
			ps.audioTS = append(ps.audioTS, tag.Timestamp)
			if a.Format == 7 { // G.711 A-law
				ps.pcm = g711.DecodeALaw(ps.pcm, a.Payload)
			}
		}
		if len(ps.videoTS) > 0 && time.Duration(ps.videoTS[len(ps.videoTS)-1]-ps.videoTS[0])*time.Millisecond >= dur {
			return ps
		}
	}
}

// TestEndToEnd: siptest peer (tone + H.264 clip) → Manager (real SIP, SDP,
// media session, fan-out, RTMP sink, recorder) → our rtmp.Server.
func TestEndToEnd(t *testing.T) {
	for _, passthrough := range []bool{false, true} {
		name := map[bool]string{false: "AAC", true: "G711"}[passthrough]
		t.Run(name, func(t *testing.T) {
			srv, url := rtmpServer(t)
			sub := srv.Subscribe("live", "e2e", 8192)
			defer sub.Close()
			peer, err := siptest.NewPeer(siptest.Config{Script: siptest.Script{Audio: true, Video: true, SendSR: true, AudioCodecs: nil}})
			require.NoError(t, err)
			defer peer.Close()
			log := newEventLog()
			dir := t.TempDir()
			format := map[bool]string{false: "mkv", true: "flv"}[passthrough]
			m, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 20000, RTPPortMax: 20999, RecordDir: dir,
				OnEvent: log.add, RTMPAudioPassthrough: passthrough, RecordFormat: format,
				// A deep queue: under -race on a loaded machine the AAC
				// encoder may fall behind for a while; drops would make the
				// frame counts below meaningless.
				SinkQueue: 4096})
			require.NoError(t, err)
			closed := false
			defer func() {
				if !closed {
					_ = m.Close(context.Background())
				}
			}()
			assert.NotZero(t, m.ListenPort("udp"))
			ctx := ctxT(t)

			c, err := m.StartCall(ctx, CallParams{CallID: "e2e", Callee: peer.URI(), RTMPURL: url, RTMPStream: "e2e",
				HasAudio: true, HasVideo: true, Record: true})
			require.NoError(t, err)
			pc, err := peer.WaitCall(ctx)
			require.NoError(t, err)
			require.NoError(t, c.WaitEstablished(ctx))

			ps := readPublished(ctx, t, sub, 3*time.Second)
			assert.True(t, ps.videoSeq, "AVC sequence header")
			assert.True(t, ps.firstVideoKey, "publishing starts on a keyframe")
			assert.GreaterOrEqual(t, ps.video, 50, "3 s of 25 fps video (stats %+v)", c.Stats())
			assert.GreaterOrEqual(t, ps.keyframes, 2)
			assert.Greater(t, ps.audio, 50)
			for i := 1; i < len(ps.videoTS); i++ {
				d := int64(ps.videoTS[i]) - int64(ps.videoTS[i-1])
				// (a sink that fell behind skips to the next keyframe, 1 s apart)
				assert.True(t, d >= 0 && d < 2500, "video timestamps step %d ms", d)
			}
			for i := 1; i < len(ps.audioTS); i++ {
				assert.GreaterOrEqual(t, ps.audioTS[i], ps.audioTS[i-1], "audio timestamps never go back")
			}
			if passthrough {
				assert.Equal(t, uint8(7), ps.audioFormat, "A-law")
				tone := testmedia.Goertzel(ps.pcm, 8000, 1000)
				off := testmedia.Goertzel(ps.pcm, 8000, 1700)
				assert.Greater(t, tone, 50*off, "the peer's 1 kHz tone reaches RTMP")
			} else {
				assert.Equal(t, uint8(10), ps.audioFormat, "AAC")
				assert.True(t, ps.audioSeq, "AAC sequence header")
			}
			// Audio and video on one timeline: they start within 300 ms.
			if len(ps.audioTS) > 0 && len(ps.videoTS) > 0 {
				d := int64(ps.audioTS[0]) - int64(ps.videoTS[0])
				assert.Less(t, abs64(d), int64(1000), "audio/video start skew %d ms", d)
			}

			require.NoError(t, m.SendDTMF(ctx, "e2e", "42", DTMFRFC2833))
			digits, err := pc.WaitDTMF(ctx, 2)
			require.NoError(t, err)
			assert.Equal(t, "42", digits)

			info := c.Info()
			assert.Equal(t, SinkActive, info.RTMPStatus)
			cs := c.Stats()
			assert.Greater(t, cs.Audio.PacketsReceived, uint64(100))
			assert.Greater(t, cs.Video.Frames, uint64(60))
			assert.GreaterOrEqual(t, cs.Audio.PacketsSent, uint64(2*4), "DTMF events sent")
			require.Len(t, cs.Sinks, 2, "RTMP leg and recording")
			for _, s := range cs.Sinks {
				assert.Greater(t, s.FramesWritten, uint64(100), s.ID)
			}
			require.NoError(t, m.Close(ctx))
			closed = true
			require.NoError(t, pc.WaitBye(ctx))
			st := log.statuses("e2e")
			assert.Equal(t, StatusTrying, st[0])
			assert.Contains(t, st, StatusEstablished)
			assert.Equal(t, StatusFinish, st[len(st)-1])
			assert.Equal(t, []SinkStatus{SinkWait, SinkActive}, log.sinkStatuses("e2e", "e2e/rtmp"))

			fi, err := os.Stat(info.RecordPath)
			require.NoError(t, err)
			assert.Greater(t, fi.Size(), int64(20000), "recording flushed")
			if format == "flv" {
				// Read the recording back: H.264 from a keyframe on, A-law
				// with the tone, timestamps in order.
				f, err := os.Open(info.RecordPath)
				require.NoError(t, err)
				defer f.Close()
				r, err := flv.NewReader(f)
				require.NoError(t, err)
				var videoTags, keyTags int
				var pcm []int16
				var lastTS [19]uint32
				for {
					tag, err := r.ReadTag()
					if errors.Is(err, io.EOF) {
						break
					}
					require.NoError(t, err)
					assert.GreaterOrEqual(t, tag.Timestamp, lastTS[tag.Type], "timestamps in order per stream")
					lastTS[tag.Type] = tag.Timestamp
					switch tag.Type {
					case 9:
						v, err := flv.ParseVideo(tag.Data)
						require.NoError(t, err)
						if !v.SequenceHeader() {
							if videoTags == 0 {
								assert.True(t, v.Keyframe(), "recording starts on a keyframe")
							}
							videoTags++
							if v.Keyframe() {
								keyTags++
							}
						}
					case 8:
						a, err := flv.ParseAudio(tag.Data)
						require.NoError(t, err)
						assert.Equal(t, uint8(7), a.Format, "A-law")
						pcm = g711.DecodeALaw(pcm, a.Payload)
					}
				}
				assert.GreaterOrEqual(t, videoTags, 60)
				assert.GreaterOrEqual(t, keyTags, 2)
				assert.Greater(t, len(pcm), 8000*2, "≥2 s of audio recorded")
				assert.Greater(t, testmedia.Goertzel(pcm, 8000, 1000), 50*testmedia.Goertzel(pcm, 8000, 1700), "tone in the recording")
			}
		})
	}
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// TestEndToEndRTMPReconnect: the RTMP server goes away mid-call and comes
// back on the same address: the call's RTMP leg reports LOST then ACTIVE,
// republishes from a keyframe with sequence headers, and its timestamps go
// on from where the call is (one broadcast with a gap, not a new one). The
// operator's counters see the push's bytes and its reconnect, the
// keyframe interval and the A/V offset; the call's log tells the story.
func TestEndToEndRTMPReconnect(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	srv1, done1 := serveRTMP(t, l)
	sub1 := srv1.Subscribe("live", "rc", 8192)

	peer, err := siptest.NewPeer(siptest.Config{Script: siptest.Script{Audio: true, Video: true}})
	require.NoError(t, err)
	defer peer.Close()
	log := newEventLog()
	m, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 27000, RTPPortMax: 27999, OnEvent: log.add, SinkQueue: 4096})
	require.NoError(t, err)
	defer m.Close(context.Background())
	var mu sync.Mutex
	var watched []string
	stop := m.WatchLog(func(id string, e LogEntry) {
		mu.Lock()
		watched = append(watched, id+" "+e.Text)
		mu.Unlock()
	})
	ctx := ctxT(t)
	c, err := m.StartCall(ctx, CallParams{CallID: "rc", Callee: peer.URI(), RTMPURL: "rtmp://" + addr + "/live", RTMPStream: "rc",
		HasAudio: true, HasVideo: true})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	first := readPublished(ctx, t, sub1, 2*time.Second)
	require.NotEmpty(t, first.videoTS)
	lastTS := first.videoTS[len(first.videoTS)-1]

	// The operator's counters: the push's bytes, the keyframe interval
	// (the siptest clip has an IDR every second), the A/V offset.
	st := c.Stats()
	require.Len(t, st.Sinks, 1)
	push := st.Sinks[0]
	require.Equal(t, "rc/rtmp", push.ID)
	require.Greater(t, push.BytesWritten, uint64(20000), "2 s of video and audio published")
	require.Zero(t, push.Reconnects)
	require.InDelta(t, float64(time.Second), float64(st.Video.KeyframeInterval), float64(150*time.Millisecond))
	require.Less(t, st.AVOffset.Abs(), time.Second, "A/V offset %v", st.AVOffset)
	require.NotZero(t, st.AVOffset, "both kinds came")

	require.NoError(t, srv1.Close())
	<-done1
	require.True(t, waitFor(func() bool { return c.Info().RTMPStatus == SinkLost }), "LOST; status %s", c.Info().RTMPStatus)

	l2, err := net.Listen("tcp4", addr)
	require.NoError(t, err)
	srv2, done2 := serveRTMP(t, l2)
	defer func() {
		_ = srv2.Close()
		<-done2
	}()
	sub2 := srv2.Subscribe("live", "rc", 8192)
	require.True(t, waitFor(func() bool { return c.Info().RTMPStatus == SinkActive }), "ACTIVE again")
	second := readPublished(ctx, t, sub2, time.Second)
	assert.True(t, second.videoSeq, "sequence header resent")
	assert.True(t, second.firstVideoKey, "republishing starts on a keyframe")
	require.NotEmpty(t, second.videoTS)
	assert.Greater(t, second.videoTS[0], lastTS, "timestamps go on from where the call is")
	st2 := c.Stats()
	require.Len(t, st2.Sinks, 1)
	require.Equal(t, uint64(1), st2.Sinks[0].Reconnects)
	require.Greater(t, st2.Sinks[0].BytesWritten, push.BytesWritten)

	require.NoError(t, c.Terminate(ctx))
	waitDone(t, c)
	assert.Equal(t, []SinkStatus{SinkWait, SinkActive, SinkLost, SinkActive}, log.sinkStatuses("rc", "rc/rtmp"))
	assert.Equal(t, StatusFinish, c.Info().Status)

	// The call's log tells the story, and outlives the call.
	stop()
	entries, err := m.CallLog("rc")
	require.NoError(t, err, "an ended call's log is remembered")
	var texts []string
	for _, e := range entries {
		texts = append(texts, e.Text)
	}
	joined := strings.Join(texts, "\n")
	for _, want := range []string{
		"→ INVITE " + peer.URI(), "← 200 OK (INVITE)", "rtmp output rc/rtmp added: rtmp://" + addr + "/live",
		"rtmp output rc/rtmp active", "rtmp output rc/rtmp connection lost, reconnecting",
		"rtmp output rc/rtmp active again (reconnected)", "→ keyframe request (RTMP output rc/rtmp (re)connected)",
		"← keyframe, ", "→ BYE", "call ended: FINISH",
	} {
		assert.Contains(t, joined, want)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, watched, len(entries), "the watcher saw every entry")
	for i, e := range entries {
		require.Equal(t, "rc "+e.Text, watched[i])
	}
	_, err = m.CallLog("nope")
	require.ErrorIs(t, err, ErrCallNotFound)
}
