package hls_test

import (
	"encoding/binary"
	"sort"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/transcode"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clipFrames returns the test clip as AVC video frames at 25 fps starting at
// start (an IDR every second).
func clipFrames(start time.Duration) []*media.Frame {
	var out []*media.Frame
	for i, au := range testmedia.ClipAccessUnits() {
		var p []byte
		for _, n := range au.NALUs {
			p = binary.BigEndian.AppendUint32(p, uint32(len(n)))
			p = append(p, n...)
		}
		ts := start + time.Duration(i)*time.Second/testmedia.ClipFPS
		out = append(out, &media.Frame{Codec: media.CodecH264, PTS: ts, DTS: ts, Keyframe: au.Keyframe,
			ClockRate: 90000, Payload: p})
	}
	return out
}

// toneFrames returns d of PCMA audio in 20 ms frames from start: a 1 kHz
// burst of burst at every whole second of the timeline (the clip's IDRs
// are there too), silence otherwise.
func toneFrames(start, d, burst time.Duration) []*media.Frame {
	var out []*media.Frame
	n := int(d / (20 * time.Millisecond))
	for i := 0; i < n; i++ {
		ts := start + time.Duration(i)*20*time.Millisecond
		amp := 0.0
		if ts%time.Second < burst {
			amp = 0.5
		}
		pcm := testmedia.Tone(1000, 8000, i*160, 160, amp)
		out = append(out, &media.Frame{Codec: media.CodecPCMA, PTS: ts, DTS: ts, Keyframe: true, ClockRate: 8000,
			Channels: 1, Duration: 20 * time.Millisecond, Payload: g711.EncodeALaw(nil, pcm)})
	}
	return out
}

// interleave merges frame lists by DTS, as a call's timeline delivers them.
func interleave(lists ...[]*media.Frame) []*media.Frame {
	var out []*media.Frame
	for _, l := range lists {
		out = append(out, l...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].DTS < out[j].DTS })
	return out
}

// transcodeBadRate is an AAC config the encoder refuses.
func transcodeBadRate() transcode.AACConfig { return transcode.AACConfig{SampleRate: 12345} }
