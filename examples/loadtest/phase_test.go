package main

import (
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/sipstream/sipstream/rtmp/flv"
)

// pictureTag is an FLV AVC picture carrying the marker of (call, frame).
func pictureTag(call int, frame int64) flv.Tag {
	m := newMarker()
	putMarker(m, call, frame)
	d := []byte{0x27, 1, 0, 0, 0}
	d = binary.BigEndian.AppendUint32(d, uint32(len(m)))
	d = append(d, m...)
	return flv.Tag{Type: flv.TagVideo, Timestamp: uint32(frame * 40), Data: d}
}

// TestReceiverPhase: the continuity between two phase marks: pictures and
// audio frames counted, the pictures that never came, the longest gaps
// (including the silence up to the mark), then a fresh phase.
func TestReceiverPhase(t *testing.T) {
	snd := newTestSender(t)
	a, _ := net.ResolveUDPAddr("udp4", "127.0.0.1:9")
	c := snd.newCall(a, a, 8, 96)
	r := &receiver{snd: snd, streams: map[string]*recvStream{}}
	rs := &recvStream{lastKey: -1, ph: phaseStream{lastNo: -1}}
	r.streams["live/a"] = rs
	r.reset("")
	r.streams["live/a"] = rs

	now := snd.now()
	for f := range int64(10) {
		if f == 4 || f == 5 {
			continue // two pictures lost
		}
		gap := int64(40 * time.Millisecond)
		if f == 6 {
			gap = 3 * int64(40*time.Millisecond)
		}
		now += gap
		rs.onTag(r, pictureTag(c.idx, f), now)
		rs.onTag(r, flv.Tag{Type: flv.TagAudio, Timestamp: uint32(f * 40), Data: []byte{0xaf, 1, 0x21}}, now)
	}
	ph := r.phase()
	assert.Equal(t, 1, ph.Streams)
	assert.Equal(t, int64(8), ph.MinVideoFrames)
	assert.Equal(t, int64(8), ph.MinAudioFrames)
	assert.Equal(t, int64(2), ph.SkippedFrames)
	assert.Equal(t, 1, ph.StreamsSkipping)
	assert.InDelta(t, 120, ph.MaxVideoGapMs, 0.01, "the hole of frames 4 and 5")
	assert.InDelta(t, 120, ph.MaxAudioGapMs, 0.01)
	assert.Positive(t, ph.DurationS)

	// Nothing more arrives: the next phase shows the stall up to its end.
	time.Sleep(600 * time.Millisecond)
	ph = r.phase()
	assert.Zero(t, ph.MinVideoFrames)
	assert.Zero(t, ph.SkippedFrames)
	assert.GreaterOrEqual(t, ph.MaxVideoGapMs, 550.0, "a stream that stopped is a gap")
	assert.GreaterOrEqual(t, ph.MaxAudioGapMs, 550.0)

	f := &floodReport{Before: &phaseStats{Streams: 1, DurationS: 5, MinVideoFPS: 25, MaxVideoGapMs: 40, MaxAudioGapMs: 30}, During: &ph}
	f.judge(1)
	assert.True(t, f.Harmed)
	assert.Contains(t, strings.Join(f.Problems, ";"), "stalled")
}

// TestFloodJudge: what counts as harm and as a failed flood.
func TestFloodJudge(t *testing.T) {
	ok := phaseStats{Streams: 3, DurationS: 4, MinVideoFrames: 100, MinVideoFPS: 25, MaxVideoGapMs: 60, MaxAudioGapMs: 45}
	f := &floodReport{Result: &floodResult{ByStatus: map[string]int{"401": 100}}, Before: &ok, During: &ok, Gateway: map[string]uint64{"unauthorized": 100}}
	f.judge(3)
	assert.False(t, f.Harmed)
	assert.Empty(t, f.Problems)
	assert.Contains(t, f.line(), "401×100")

	for name, tc := range map[string]struct {
		res    floodResult
		during phaseStats
		harm   bool
		want   string
	}{
		"answered": {res: floodResult{ByStatus: map[string]int{"401": 9, "200": 1}}, during: ok, want: "answered 200"},
		"slow":     {res: floodResult{ByStatus: map[string]int{}}, during: phaseStats{Streams: 3, DurationS: 4, MinVideoFPS: 20, MaxVideoGapMs: 80}, harm: true, want: "pictures/s"},
		"lost":     {res: floodResult{ByStatus: map[string]int{}}, during: phaseStats{Streams: 3, DurationS: 4, MinVideoFPS: 24.5, MaxVideoGapMs: 80, SkippedFrames: 7}, harm: true, want: "lost 7"},
		"gone":     {res: floodResult{ByStatus: map[string]int{}}, during: phaseStats{Streams: 2, DurationS: 4, MinVideoFPS: 25}, harm: true, want: "2 streams"},
	} {
		f := &floodReport{Result: &tc.res, Before: &ok, During: &tc.during}
		f.judge(3)
		assert.Equal(t, tc.harm, f.Harmed, name)
		assert.Contains(t, strings.Join(f.Problems, ";"), tc.want, name)
	}
}

// FuzzParseOffer: the SDP the load peer reads (the gateway's offer, or
// its answer to the caller) never panics the parser, and what it accepts
// has both destinations.
func FuzzParseOffer(f *testing.F) {
	f.Add(answerSDP("127.0.0.1", 1, 4000, 4002, 8, 96))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 8\r\nm=video 0 RTP/AVP 96\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := parseOffer(b)
		if err != nil {
			return
		}
		if !o.AudioAddr.IsValid() || !o.VideoAddr.IsValid() || o.AudioAddr.Port() == 0 || o.VideoAddr.Port() == 0 {
			t.Fatalf("accepted an offer without destinations: %+v", o)
		}
	})
}
