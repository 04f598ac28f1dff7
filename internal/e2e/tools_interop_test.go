//go:build interop

package e2e

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
)

// ---------------------------------------------------------------------------
// sipp as the callee: it does the SIP part only. sipp 3.6.1 cannot play an
// audio and a video pcap in one call and cannot make up media, so the RTP
// comes from testmedia.Replayer (testenv.SippConfig lists sipp's quirks).

// sippAnswer says what sipp's 200 OK answers to the Manager's offer (which
// always has an audio and then a video m= line).
type sippAnswer struct {
	AudioCodec media.Codec // CodecPCMA or CodecOpus
	AudioPort  int         // where sipp says its audio comes from (our replayer's socket)
	VideoPort  int         // zero rejects the video stream (port 0): an audio-only call
}

// sdp returns the answer body for sipp's scenario ([media_ip] is sipp's
// -mi address).
func (a sippAnswer) sdp() string {
	var b strings.Builder
	b.WriteString("v=0\n")
	b.WriteString("o=sipp 53655765 2353687637 IN IP[local_ip_type] [local_ip]\n")
	b.WriteString("s=-\n")
	b.WriteString("c=IN IP[media_ip_type] [media_ip]\n")
	b.WriteString("t=0 0\n")
	switch a.AudioCodec {
	case media.CodecOpus:
		fmt.Fprintf(&b, "m=audio %d RTP/AVP 111 101\n", a.AudioPort)
		b.WriteString("a=rtpmap:111 opus/48000/2\n")
		b.WriteString("a=fmtp:111 useinbandfec=1\n")
	default:
		fmt.Fprintf(&b, "m=audio %d RTP/AVP 8 101\n", a.AudioPort)
		b.WriteString("a=rtpmap:8 PCMA/8000\n")
	}
	b.WriteString("a=rtpmap:101 telephone-event/8000\n")
	b.WriteString("a=fmtp:101 0-15\n")
	b.WriteString("a=sendrecv\n")
	if a.VideoPort == 0 {
		b.WriteString("m=video 0 RTP/AVP 96\n")
		b.WriteString("a=rtpmap:96 H264/90000\n")
	} else {
		fmt.Fprintf(&b, "m=video %d RTP/AVP 96\n", a.VideoPort)
		b.WriteString("a=rtpmap:96 H264/90000\n")
		b.WriteString("a=fmtp:96 packetization-mode=1;profile-level-id=42e01e\n")
		b.WriteString("a=sendrecv\n")
	}
	return b.String()
}

// startSipp runs sipp as the callee of one call with answer a. It is
// killed when the test ends.
func startSipp(t *testing.T, a sippAnswer) *testenv.Sipp {
	t.Helper()
	return testenv.StartSipp(t, testenv.SippConfig{Scenario: testenv.SippCallee(a.sdp())})
}

// newReplayer opens a testmedia.Replayer for the test (closed at its end).
func newReplayer(t *testing.T, cfg testmedia.ReplayerConfig) *testmedia.Replayer {
	t.Helper()
	rp, err := testmedia.NewReplayer(cfg)
	require.NoError(t, err)
	t.Cleanup(rp.Close)
	return rp
}

// ---------------------------------------------------------------------------
// ffmpeg and ffprobe: read what was published and analyse it.

// toneReport describes a decoded signal that should be one steady tone.
type toneReport struct {
	Samples        int
	Onset          time.Duration // first window with sound
	FrequencyHz    float64       // estimated from zero crossings over the steady part
	MinShare       float64       // lowest Goertzel share at the tone over windows after the onset
	WeakWindows    int           // 20 ms windows after the onset where the share is below 0.5
	Windows        int           // 20 ms windows after the onset
	LongestSilence time.Duration // longest run of silent windows after the onset
	Silences       int           // runs of silence after the onset
}

func (r toneReport) String() string {
	return fmt.Sprintf("%d samples, onset %v, %.1f Hz, 1 kHz share min %.3f (%d of %d windows weak), longest silence %v (%d silent runs)",
		r.Samples, r.Onset, r.FrequencyHz, r.MinShare, r.WeakWindows, r.Windows, r.LongestSilence, r.Silences)
}

// analyseTone measures pcm (mono, rate Hz), which should be one steady
// tone at freq after its onset. Silence is judged in 5 ms windows (RMS under
// 1% of full scale); the tone in 20 ms windows (Goertzel share at freq).
// tail is left out at the end (a stream cut mid-frame).
func analyseTone(pcm []int16, rate int, freq float64, tail time.Duration) toneReport {
	r := toneReport{Samples: len(pcm), MinShare: 1}
	end := len(pcm) - int(tail.Seconds()*float64(rate))
	win := rate / 200
	onset := -1
	run := 0
	for off := 0; off+win <= end; off += win {
		w := pcm[off : off+win]
		var sum float64
		for _, x := range w {
			sum += float64(x) * float64(x)
		}
		silent := math.Sqrt(sum/float64(len(w))) < 0.01*32768
		if onset < 0 {
			if silent {
				continue
			}
			onset = off
			r.Onset = time.Duration(off) * time.Second / time.Duration(rate)
		}
		if !silent {
			run = 0
			continue
		}
		run++
		if run == 1 {
			r.Silences++
		}
		if d := time.Duration(run*win) * time.Second / time.Duration(rate); d > r.LongestSilence {
			r.LongestSilence = d
		}
	}
	if onset < 0 {
		return r
	}
	win = rate / 50
	for off := onset; off+win <= end; off += win {
		r.Windows++
		share := testmedia.Goertzel(pcm[off:off+win], rate, freq)
		if share < r.MinShare {
			r.MinShare = share
		}
		if share < 0.5 {
			r.WeakWindows++
		}
	}
	if end-onset > rate {
		r.FrequencyHz = estimateFrequency(pcm[onset+rate/2:end], rate)
	}
	return r
}

// estimateFrequency measures the frequency of a steady tone from its
// upward zero crossings, interpolated between samples: (crossings-1)
// periods between the first and the last.
func estimateFrequency(pcm []int16, rate int) float64 {
	first, last, n := -1.0, -1.0, 0
	for i := 1; i < len(pcm); i++ {
		a, b := float64(pcm[i-1]), float64(pcm[i])
		if a < 0 && b >= 0 {
			x := float64(i-1) + a/(a-b)
			if first < 0 {
				first = x
			}
			last = x
			n++
		}
	}
	if n < 2 {
		return 0
	}
	return float64(n-1) * float64(rate) / (last - first)
}
