package record_test

import (
	"encoding/binary"
	"sort"
	"time"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
)

// clipFrames returns the test clip as AVC video frames at 25 fps starting at
// start.
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

// toneFrames returns d of a 1 kHz tone as 20 ms PCMA frames starting at start.
func toneFrames(codec media.Codec, start, d time.Duration) []*media.Frame {
	var out []*media.Frame
	n := int(d / (20 * time.Millisecond))
	for i := 0; i < n; i++ {
		pcm := testmedia.Tone(1000, 8000, i*160, 160, 0.5)
		var p []byte
		if codec == media.CodecPCMU {
			p = g711.EncodeULaw(nil, pcm)
		} else {
			p = g711.EncodeALaw(nil, pcm)
		}
		ts := start + time.Duration(i)*20*time.Millisecond
		out = append(out, &media.Frame{Codec: codec, PTS: ts, DTS: ts, Keyframe: true, ClockRate: 8000,
			Channels: 1, Duration: 20 * time.Millisecond, Payload: p})
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
