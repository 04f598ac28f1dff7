package whep

import (
	"bytes"
	"context"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtph264"
)

// TestIdleSinkKeepsKeyframeOnly: with no viewer, WriteFrame packetizes
// nothing, allocates nothing, starts no goroutine, and keeps the last
// keyframe as it came; a joining viewer gets that keyframe packetized (with
// the parameter sets it lacked) and the frames after it stamped later.
func TestIdleSinkKeepsKeyframeOnly(t *testing.T) {
	before := goleak.IgnoreCurrent()
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())

	aus := testmedia.ClipAccessUnits()
	if !aus[0].Keyframe {
		t.Fatal("clip does not start with a keyframe")
	}
	var idrOnly [][]byte // the first keyframe without its SPS and PPS
	for _, n := range aus[0].NALUs {
		if h264.NALUType(n[0]&0x1f) == h264.NALUTypeIDR {
			idrOnly = append(idrOnly, n)
		}
	}
	frames := []media.Frame{h264Frame(0), h264Frame(1), h264Frame(2)}
	key := media.Frame{Codec: media.CodecH264, PTS: frames[2].PTS + 40e6, DTS: frames[2].PTS + 40e6,
		Keyframe: true, ClockRate: 90000, Payload: rtph264.JoinAVC(idrOnly)}
	frames = append(frames, key, h264Frame(4), h264Frame(5))
	frames[4].PTS, frames[5].PTS = key.PTS+40e6, key.PTS+80e6
	for i := range frames {
		if err := s.WriteFrame(&frames[i]); err != nil {
			t.Fatal(err)
		}
	}
	a := toneFrameInternal()
	if err := s.WriteFrame(&a); err != nil {
		t.Fatal(err)
	}
	goleak.VerifyNone(t, before) // an idle sink runs no goroutine

	s.mu.Lock()
	if s.lastKey != nil || s.lastKeyFrame != &frames[3] || s.sinceKey != 2 || s.h264PLID == "" ||
		s.video != media.CodecH264 || s.audio != media.CodecPCMA {
		t.Fatalf("idle state: lastKey %v, lastKeyFrame %p (want %p), sinceKey %d, plid %q, codecs %v %v",
			s.lastKey, s.lastKeyFrame, &frames[3], s.sinceKey, s.h264PLID, s.video, s.audio)
	}
	s.mu.Unlock()
	if st := s.Stats(); st.FramesIn != 7 || st.FramesIgnored != 0 || st.PacketsSent != 0 {
		t.Errorf("stats %+v", st)
	}
	p := h264Frame(6)
	if n := testing.AllocsPerRun(100, func() { _ = s.WriteFrame(&p) }); n != 0 {
		t.Errorf("idle WriteFrame allocates %.1f times per frame", n)
	}

	v := &viewer{queue: make(chan *unit, 4), video: &webrtc.TrackLocalStaticRTP{}}
	s.pkMu.Lock()
	s.mu.Lock()
	cached, since := s.joinLocked(v)
	s.mu.Unlock()
	s.pkMu.Unlock()
	if cached == nil || !cached.key || since != 2+101 { // AllocsPerRun runs once more to warm up
		t.Fatalf("join: cached %v, since %d", cached != nil && cached.key, since)
	}
	var want [][]byte
	for _, n := range aus[0].NALUs {
		if t := h264.NALUType(n[0] & 0x1f); t == h264.NALUTypeSPS || t == h264.NALUTypePPS {
			want = append(want, n)
		}
	}
	want = append(want, idrOnly...)
	if got := depacketize(cached); !bytes.Equal(got, rtph264.JoinAVC(want)) {
		t.Errorf("cached keyframe: %d bytes through RTP, want %d (SPS and PPS in front)", len(got), len(rtph264.JoinAVC(want)))
	}

	next := h264Frame(7)
	next.PTS = key.PTS + 10*40e6
	if err := s.WriteFrame(&next); err != nil {
		t.Fatal(err)
	}
	select {
	case u := <-v.queue:
		if d := int32(u.ts - cached.ts); d != 10*3600 {
			t.Errorf("next frame %d RTP ticks after the cached keyframe, want %d", d, 10*3600)
		}
	default:
		t.Fatal("frame not queued for the viewer")
	}
	s.mu.Lock()
	delete(s.active, v)
	s.mu.Unlock()
}

func toneFrameInternal() media.Frame {
	return media.Frame{Codec: media.CodecPCMA, Keyframe: true, ClockRate: 8000, Channels: 1,
		Duration: 20e6, Payload: bytes.Repeat([]byte{0xd5}, 160)}
}
