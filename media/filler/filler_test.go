package filler

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
)

const ms = time.Millisecond

// TestHoldAndResume: 1 s of real media, a 3 s hold, real media again
// (video starting with P frames). During the hold: contiguous silence and
// keyframe stills at the still interval; after it: no DTS repeats, video
// restarts at a requested keyframe, filling stops.
func TestHoldAndResume(t *testing.T) {
	c := newFakeClock()
	origin := c.Now()
	r := newRecorder()
	src := &source{keyEvery: 250} // a keyframe at 0 and then not for 10 s
	forceKey := false
	asks := 0
	f := r.newFiller(t, Config{Clock: c, OnNeedKeyframe: func() { asks++; forceKey = true }})

	src.play(f, c, origin, 0, time.Second, nil)
	c.AdvanceTo(origin.Add(time.Second))
	lastKey := append([]byte(nil), r.snapshot()[1].Payload...) // the keyframe at 0
	require.True(t, r.snapshot()[1].Keyframe)

	f.Hold(true)
	assert.True(t, f.Stats().Holding)
	c.AdvanceTo(origin.Add(4 * time.Second))
	f.Hold(false)
	// The phone takes 100 ms to send again.
	c.AdvanceTo(origin.Add(4100 * ms))
	src.play(f, c, origin, 4100*ms, 6*time.Second, &forceKey)
	f.Close()
	assert.Zero(t, c.Pending(), "no timer left after Close")

	fs := r.snapshot()
	checkMonotonic(t, fs)

	// Silence: contiguous 20 ms packets from the last real one (980 ms)
	// until real audio came back at 4100 ms.
	var prev time.Duration = 980 * ms
	silent := 0
	for _, fr := range fs {
		if fr.Kind() != media.KindAudio || !fr.filler {
			continue
		}
		silent++
		assert.Equal(t, prev+20*ms, fr.DTS, "silence contiguous")
		prev = fr.DTS
		assert.Equal(t, media.CodecPCMA, fr.Codec)
		assert.Equal(t, bytes.Repeat([]byte{0xd5}, 160), fr.Payload)
		assert.Equal(t, 20*ms, fr.Duration)
		assert.EqualValues(t, 8000, fr.ClockRate)
	}
	assert.InDelta(t, (4100-1000)/20, silent, 2)
	assert.Equal(t, count(fs, media.KindAudio, false, 4100*ms, 6*time.Second), (6000-4100)/20, "real audio after the hold all passes")

	// Stills: the last keyframe, at once and every 500 ms until the real
	// keyframe that followed the first P frame after the hold.
	var stills []time.Duration
	for _, fr := range fs {
		if fr.Kind() == media.KindVideo && fr.filler {
			assert.True(t, fr.Keyframe)
			assert.Equal(t, lastKey, fr.Payload)
			stills = append(stills, fr.DTS)
		}
	}
	require.NotEmpty(t, stills)
	assert.Equal(t, time.Second, stills[0], "first still at once")
	for i := 1; i < len(stills); i++ {
		assert.Equal(t, 500*ms, stills[i]-stills[i-1])
	}
	assert.Equal(t, 1, asks, "one keyframe request")
	// Real video after the hold: 4120 (P, dropped, asks) then 4160 key.
	var firstReal *outFrame
	for i := range fs {
		if fs[i].Kind() == media.KindVideo && !fs[i].filler && fs[i].DTS > time.Second {
			firstReal = &fs[i]
			break
		}
	}
	require.NotNil(t, firstReal)
	assert.True(t, firstReal.Keyframe, "video resumes at a keyframe")
	assert.Equal(t, 4160*ms, firstReal.DTS)
	assert.Equal(t, 4*time.Second, stills[len(stills)-1], "stills until the real keyframe")

	st := f.Stats()
	assert.False(t, st.Holding)
	assert.EqualValues(t, 1, st.Holds)
	assert.Equal(t, 3*time.Second, st.HoldTime)
	assert.EqualValues(t, silent, st.AudioFrames)
	assert.EqualValues(t, len(stills), st.VideoFrames)
	assert.EqualValues(t, 1, st.DroppedNoKeyframe)
	assert.Zero(t, st.DroppedHeld)
	assert.Zero(t, st.DroppedLate)
}

// TestLateRealFramesDropped: real frames whose DTS is not after the last
// filler frame of their kind are dropped, later ones pass.
func TestLateRealFramesDropped(t *testing.T) {
	c, origin, r, src, f := setup(t, Config{}, 25)
	src.play(f, c, origin, 0, 500*ms, nil)
	f.Hold(true)
	c.AdvanceTo(origin.Add(time.Second))
	f.Hold(false)
	fs := r.snapshot()
	lastSilence := lastOf(t, fs, media.KindAudio)
	require.True(t, lastSilence.filler)
	// The phone's first packets after the hold are stamped a little
	// behind the filler (its timeline was placed by an earlier arrival).
	f.WriteFrame(src.audio(lastSilence.DTS - 10*ms))
	f.WriteFrame(src.audio(lastSilence.DTS))
	f.WriteFrame(src.audio(lastSilence.DTS + 5*ms))
	f.WriteFrame(src.video(lastSilence.DTS+5*ms, true))
	fs = r.snapshot()
	checkMonotonic(t, fs)
	assert.EqualValues(t, 2, f.Stats().DroppedLate)
	n := len(fs)
	assert.Equal(t, lastSilence.DTS+5*ms, fs[n-2].DTS)
	assert.False(t, fs[n-2].filler)
	assert.True(t, fs[n-1].Keyframe)
	assert.False(t, fs[n-1].filler)
	// Both kinds resumed: nothing more is filled.
	before := f.Stats()
	c.Advance(2 * time.Second)
	assert.Equal(t, before.AudioFrames, f.Stats().AudioFrames)
	assert.Equal(t, before.VideoFrames, f.Stats().VideoFrames)
	assert.Zero(t, c.Pending())
}

// TestFramesDuringHoldDropped: what arrives while on hold (music on hold
// from a peer that holds with a=sendonly) is not published, but its
// keyframe becomes the still.
func TestFramesDuringHoldDropped(t *testing.T) {
	c, origin, r, src, f := setup(t, Config{}, 25)
	src.play(f, c, origin, 0, 200*ms, nil)
	f.Hold(true)
	c.AdvanceTo(origin.Add(300 * ms))
	held := src.video(300*ms, true)
	f.WriteFrame(held)
	f.WriteFrame(src.audio(300 * ms))
	c.AdvanceTo(origin.Add(1500 * ms))
	fs := r.snapshot()
	checkMonotonic(t, fs)
	for _, fr := range fs {
		assert.False(t, !fr.filler && fr.DTS >= 200*ms, "real frame at %v published during the hold", fr.DTS)
	}
	assert.EqualValues(t, 2, f.Stats().DroppedHeld)
	last := lastOf(t, fs, media.KindVideo)
	assert.True(t, last.filler)
	assert.Equal(t, held.Payload, last.Payload, "the still is the latest keyframe, held or not")
}

// TestGapFillsStoppedKind: with Config.Gap, video that stops while audio
// flows gets stills after Gap; audio is left alone; video resumes at its
// next keyframe.
func TestGapFillsStoppedKind(t *testing.T) {
	c, origin, r, src, f := setup(t, Config{Gap: 500 * ms}, 25)
	src.play(f, c, origin, 0, time.Second, nil)
	// Camera off for 2 s: audio only.
	for tt := time.Second; tt < 3*time.Second; tt += 20 * ms {
		c.AdvanceTo(origin.Add(tt))
		f.WriteFrame(src.audio(tt))
	}
	src.play(f, c, origin, 3*time.Second, 4*time.Second, nil) // keyframe at 3 s (index 75)
	fs := r.snapshot()
	checkMonotonic(t, fs)
	assert.Zero(t, count(fs, media.KindAudio, true, 0, time.Hour), "audio flowed: no silence")
	stills := count(fs, media.KindVideo, true, 0, time.Hour)
	// Video stopped after 960 ms; Gap fires at 1460 ms, then every 500 ms
	// until 3 s: 1460, 1960, 2460, 2960.
	assert.Equal(t, 4, stills)
	assert.Equal(t, 4, count(fs, media.KindVideo, true, 1460*ms, 2961*ms))
	assert.EqualValues(t, 1, f.Stats().GapFills)
	assert.Equal(t, 25, count(fs, media.KindVideo, false, 3*time.Second, 4*time.Second))
	f.Close()
	assert.Zero(t, c.Pending())
}

// TestGapBothKinds: a stall of everything fills both, audio contiguous
// from its last packet.
func TestGapBothKinds(t *testing.T) {
	c, origin, r, src, f := setup(t, Config{Gap: 300 * ms}, 25)
	src.play(f, c, origin, 0, time.Second, nil)
	c.AdvanceTo(origin.Add(2 * time.Second))
	fs := r.snapshot()
	checkMonotonic(t, fs)
	// Audio stopped at 980 ms; filled from 1000 ms up to 2 s.
	assert.Equal(t, 50, count(fs, media.KindAudio, true, time.Second, 2*time.Second))
	// Video stopped at 960 ms: stills at 1260 and 1760 ms.
	assert.Equal(t, 2, count(fs, media.KindVideo, true, 0, time.Hour))
	assert.EqualValues(t, 2, f.Stats().GapFills)
}

// TestNoKeyframeNoVideo: without a keyframe seen and without a black
// picture, only audio is filled.
func TestNoKeyframeNoVideo(t *testing.T) {
	c, _, r, src, f := setup(t, Config{}, 0)
	f.WriteFrame(src.video(0, false))
	f.WriteFrame(src.audio(0))
	f.Hold(true)
	c.Advance(time.Second)
	fs := r.snapshot()
	assert.Zero(t, count(fs, media.KindVideo, true, 0, time.Hour))
	assert.Equal(t, 49, count(fs, media.KindAudio, true, 0, time.Hour))
}

// TestBlackPicture: with BlackWidth/Height and no keyframe, the still is a
// generated black H.264 IDR with SPS and PPS.
func TestBlackPicture(t *testing.T) {
	c, _, r, src, f := setup(t, Config{BlackWidth: 320, BlackHeight: 180}, 0)
	f.WriteFrame(src.audio(0))
	f.Hold(true)
	c.Advance(time.Second)
	var stills []outFrame
	for _, fr := range r.snapshot() {
		if fr.Kind() == media.KindVideo {
			stills = append(stills, fr)
		}
	}
	require.Len(t, stills, 3) // 0, 500 ms, 1 s
	for _, s := range stills {
		assert.Equal(t, media.CodecH264, s.Codec)
		assert.True(t, s.Keyframe)
		require.Greater(t, len(s.Payload), 5)
		assert.EqualValues(t, 7, s.Payload[4]&0x1f, "SPS first")
	}
}

// TestOpusSilence: Opus calls get the 20 ms silent Opus frame, with the
// call's channel count.
func TestOpusSilence(t *testing.T) {
	c, origin, r, _, f := setup(t, Config{}, 0)
	for tt := time.Duration(0); tt < 200*ms; tt += 10 * ms {
		c.AdvanceTo(origin.Add(tt))
		f.WriteFrame(&media.Frame{Codec: media.CodecOpus, PTS: tt, DTS: tt, Keyframe: true, Payload: []byte{0x7c, 1, 2},
			ClockRate: 48000, Channels: 2, Duration: 10 * ms})
	}
	f.Hold(true)
	c.AdvanceTo(origin.Add(time.Second))
	var n int
	for _, fr := range r.snapshot() {
		if fr.filler {
			n++
			assert.Equal(t, []byte{0xf8, 0xff, 0xfe}, fr.Payload)
			assert.EqualValues(t, 2, fr.Channels)
			assert.Equal(t, 20*ms, fr.Duration)
			assert.EqualValues(t, 48000, fr.ClockRate)
		}
	}
	// From 200 ms (after the last 10 ms packet at 190) to 1 s.
	assert.Equal(t, 40, n)
	checkMonotonic(t, r.snapshot())
}

// TestSpeexNotFilled: a codec without a silent frame is not filled (and
// does not spin the timer).
func TestSpeexNotFilled(t *testing.T) {
	c, _, r, _, f := setup(t, Config{Gap: time.Second}, 0)
	f.WriteFrame(&media.Frame{Codec: media.CodecSpeex, Keyframe: true, Payload: []byte{1, 2, 3}, ClockRate: 8000, Channels: 1, Duration: 20 * ms})
	f.Hold(true)
	c.Advance(3 * time.Second)
	f.Hold(false)
	c.Advance(3 * time.Second)
	assert.Len(t, r.snapshot(), 1)
	assert.Zero(t, f.Stats().AudioFrames)
	assert.Zero(t, c.Pending())
}

// TestHoldBeforeMedia: a hold before any frame fills nothing and does not
// fail; media after Hold(false) passes.
func TestHoldBeforeMedia(t *testing.T) {
	c := newFakeClock()
	r := newRecorder()
	f := r.newFiller(t, Config{Clock: c})
	f.Hold(true)
	f.Hold(true)
	c.Advance(time.Second)
	f.Hold(false)
	src := &source{}
	f.WriteFrame(src.audio(time.Second))
	assert.Len(t, r.snapshot(), 1)
	f.Close()
	f.Close()
	f.Hold(true) // after Close: nothing
	assert.False(t, f.Stats().Holding)
	assert.Zero(t, c.Pending())
}

func TestConfigErrors(t *testing.T) {
	out := func(*media.Frame) {}
	for _, cfg := range []Config{
		{StillInterval: -1},
		{StillInterval: 3 * time.Second},
		{Gap: -1},
		{Gap: 10 * ms},
		{BlackWidth: 320},
		{BlackWidth: 321, BlackHeight: 180},
		{BlackWidth: 8, BlackHeight: 8},
	} {
		_, err := New(cfg, out)
		assert.True(t, errors.Is(err, ErrConfig), "%+v: %v", cfg, err)
	}
	_, err := New(Config{}, nil)
	assert.ErrorIs(t, err, ErrConfig)
	f, err := New(Config{StillInterval: MaxStillInterval, Gap: MinGap}, out)
	require.NoError(t, err)
	f.Close()
}

// TestResumeClosesAudioHole: real audio that comes back before the timer
// emitted the silence due just before it gets that silence first, so the
// audio track has no hole.
func TestResumeClosesAudioHole(t *testing.T) {
	c, origin, r, src, f := setup(t, Config{}, 25)
	src.play(f, c, origin, 0, 500*ms, nil)
	f.Hold(true)
	c.AdvanceTo(origin.Add(time.Second))
	f.Hold(false)
	// Silence emitted up to 980 ms (ending at 1 s). The phone's packet
	// for 1060 ms arrives at 1005 ms: its sender clock runs ahead.
	c.AdvanceTo(origin.Add(1005 * ms))
	f.WriteFrame(src.audio(1060 * ms))
	fs := r.snapshot()
	checkMonotonic(t, fs)
	var tail []outFrame
	for _, fr := range fs {
		if fr.Kind() == media.KindAudio && fr.DTS >= 960*ms {
			tail = append(tail, fr)
		}
	}
	require.Len(t, tail, 6)
	for i, want := range []time.Duration{960, 980, 1000, 1020, 1040, 1060} {
		assert.Equal(t, want*ms, tail[i].DTS)
		assert.Equal(t, i < 5, tail[i].filler, "frame at %v", want)
	}
}

// TestVP8Still: a VP8 call's still is its last VP8 keyframe; a VP8 call
// that sent no keyframe yet gets no black H.264 picture.
func TestVP8Still(t *testing.T) {
	c, _, r, _, f := setup(t, Config{BlackWidth: 64, BlackHeight: 64}, 0)
	f.WriteFrame(&media.Frame{Codec: media.CodecVP8, Payload: []byte{0x31, 0, 0}, ClockRate: 90000}) // inter frame
	f.Hold(true)
	c.Advance(time.Second)
	assert.Zero(t, f.Stats().VideoFrames, "no H.264 black picture in a VP8 call")
	f.Hold(false)

	key := []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x00, 0x40, 0x00}
	f.WriteFrame(&media.Frame{Codec: media.CodecVP8, DTS: time.Second, PTS: time.Second, Keyframe: true, Payload: key, ClockRate: 90000})
	f.Hold(true)
	c.Advance(time.Second)
	var stills int
	for _, fr := range r.snapshot() {
		if fr.filler {
			stills++
			assert.Equal(t, media.CodecVP8, fr.Codec)
			assert.Equal(t, key, fr.Payload)
		}
	}
	assert.Equal(t, 2, stills) // 1 ms after the keyframe, then 500 ms later
	f.WriteFrame(nil)          // ignored, no panic
}
