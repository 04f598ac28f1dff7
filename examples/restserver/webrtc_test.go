package main

import (
	"context"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/rtph264"
	"github.com/sipstream/sipstream/sink/whep"
)

// A viewer that joins a video call after its first audio but before its
// first video keyframe (the page plays a call the moment it is answered)
// still gets the video: the sink waits for it instead of answering
// audio-only for good.
func TestWebRTCViewerBeforeFirstKeyframe(t *testing.T) {
	mux := whep.NewMux(whep.MuxConfig{})
	require.NoError(t, mux.Reserve("late-video", "call1"))
	var keyframeAsks atomic.Int32 // the call's RequestKeyframe
	// As wcsapi makes the sink of a call that asked for video: a viewer
	// waits up to 8 s for the video.
	s, err := whep.New(whep.Config{Probe: 8 * time.Second, RequestKeyframe: func() { keyframeAsks.Add(1) }})
	require.NoError(t, err)
	defer s.Close(context.Background())
	require.True(t, mux.Attach("late-video", "call1", s, "sink1"))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	// The call: a PCMA tone from the start, the H.264 clip from 2.5 s on,
	// starting one picture after an IDR (as when a phone's camera starts).
	const videoAfter = 2500 * time.Millisecond
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		aus := testmedia.ClipAccessUnits()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		v := 0
		for n := 0; ; n++ {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			pts := time.Duration(n) * 20 * time.Millisecond
			pcm := testmedia.Tone(1000, 8000, n*160, 160, 0.5)
			_ = s.WriteFrame(&media.Frame{Codec: media.CodecPCMA, PTS: pts, DTS: pts, Keyframe: true,
				Payload: g711.EncodeALaw(nil, pcm), ClockRate: 8000, Channels: 1, Duration: 20 * time.Millisecond})
			if time.Since(start) >= videoAfter && n%2 == 0 {
				au := aus[(v+1)%len(aus)] // joins the clip mid-GOP: no keyframe for 1 s
				v++
				_ = s.WriteFrame(&media.Frame{Codec: media.CodecH264, PTS: pts, DTS: pts, Keyframe: au.Keyframe,
					Payload: rtph264.JoinAVC(au.NALUs), ClockRate: 90000})
			}
		}
	}()
	defer func() { close(quit); wg.Wait() }()

	time.Sleep(200 * time.Millisecond) // audio known, video not yet
	viewer := playWHEP(t, ts.URL+"/whep/late-video")
	require.True(t, answerHasVideoTrack(viewer.answer()), "answered audio-only:\n%s", viewer.answer())
	viewer.wait(t, 25, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	viewer.stop(t, ts.URL)
	// The viewer connected with no keyframe to start from: the sink asked
	// the call for one.
	require.Positive(t, keyframeAsks.Load(), "the viewer's keyframe request did not reach the call (sink stats %+v)", s.Stats())
}
