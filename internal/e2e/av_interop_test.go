//go:build interop

package e2e

import (
	"context"
	"math"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
)

// burst is the tone length at the start of every second.
const burst = 200 * time.Millisecond

// videoSlices copies the file's H.264 track out as Annex-B (ffmpeg's
// h264_mp4toannexb) and returns its slice NAL units (types 1 and 5) in
// order.
func videoSlices(t *testing.T, file string) [][]byte {
	t.Helper()
	out, err := exec.Command(testenv.LookPath(t, "ffmpeg"), "-nostdin", "-v", "error", "-i", file, "-map", "0:v:0",
		"-c", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264", "-").Output()
	require.NoError(t, err, "ffmpeg copy H.264 out of %s", file)
	var slices [][]byte
	for _, nalu := range testmedia.SplitAnnexB(out) {
		if typ := testmedia.NALType(nalu); typ == 1 || typ == 5 {
			slices = append(slices, nalu)
		}
	}
	return slices
}

// TestInteropSippAVLipSyncToNginx: sipp answers audio and video; the
// replayer plays a phone sending the H.264 clip and PCMA tone bursts that
// start with every IDR, with RTCP sender reports. What nginx-rtmp relays
// must be the clip's pictures byte for byte (ffmpeg's h264_mp4toannexb
// copy of the published track, slices compared), in decodable order, and
// AAC-LC 48 kHz audio in sync with them: each tone burst must begin, as
// ffmpeg's decoder and silencedetect see it, within 45 ms of its IDR
// (ITU-R BT.1359 puts the detectability of audio leading video at 45 ms),
// which needs the AAC encoder delay compensated.
func TestInteropSippAVLipSyncToNginx(t *testing.T) {
	publishAV(t, "sipp-av", 150, 45*time.Millisecond)
}

// TestInteropSippAVLipSyncLossy: issue 11's A/V bound on a bad link. The
// same call with the gateway's inbound RTP at 2 % random loss, 30 ms ± 25 ms
// (order kept), from a source whose RTCP is exact: every IDR that gets
// through is within 20 ms of its tone burst. (The replayer cannot answer
// keyframe requests, so the pictures after a loss wait for the clip's next
// IDR, a second later.)
func TestInteropSippAVLipSyncLossy(t *testing.T) {
	listen, _ := impairedListen(lossyLink(1202, 0.02))
	publishAV(t, "sipp-av-lossy", 60, 20*time.Millisecond, func(c *callmgr.Config) { c.MediaListen = listen })
}

// publishAV runs the A/V call and checks the relayed stream: at least
// minPictures of the clip's pictures, and every IDR within maxAV of its
// tone burst.
func publishAV(t *testing.T, stream string, minPictures int, maxAV time.Duration, opts ...func(*callmgr.Config)) {
	t.Helper()
	// The phone's media: the H.264 clip at 25 fps (an IDR every second)
	// and PCMA audio that is a 1 kHz tone for the first 200 ms of every
	// second, so each IDR and the onset of a tone burst share a capture
	// instant, with sender reports on one NTP clock.
	rp := newReplayer(t, testmedia.ReplayerConfig{Audio: media.CodecPCMA, Burst: burst, Video: true, RTCP: true})
	p := publishSippCall(t, sippAnswer{AudioCodec: media.CodecPCMA, AudioPort: rp.AudioPort(), VideoPort: rp.VideoPort()},
		true, stream, 8*time.Second, func(ctx context.Context, audio, video *net.UDPAddr) (int, error) {
			_, frames, err := rp.Run(ctx, audio, video)
			return frames, err
		}, opts...)
	assertAnsweredCall(t, p.Calls)
	assert.Equal(t, []callmgr.SinkStatus{callmgr.SinkWait, callmgr.SinkActive}, p.RTMP)

	streams := testenv.ProbeStreams(t, p.File)
	a, v := streams["audio"], streams["video"]
	assert.Equal(t, "aac", a.CodecName)
	assert.Equal(t, "LC", a.Profile)
	assert.Equal(t, "48000", a.SampleRate)
	assert.Equal(t, "h264", v.CodecName)
	assert.Equal(t, testmedia.ClipWidth, v.Width)
	assert.Equal(t, testmedia.ClipHeight, v.Height)
	assert.Empty(t, testenv.DecodeErrors(t, p.File), "ffmpeg decodes the published stream without errors")

	// Video: the clip's pictures, byte for byte, each the next picture of
	// the clip or an IDR.
	clip := testmedia.ClipAccessUnits()
	index := map[string]int{}
	for i, au := range clip {
		for _, nalu := range au.NALUs {
			if typ := testmedia.NALType(nalu); typ == 1 || typ == 5 {
				index[string(nalu)] = i
			}
		}
	}
	slices := videoSlices(t, p.File)
	require.NotEmpty(t, slices)
	prev, inOrder := -1, 0
	for i, s := range slices {
		n, ok := index[string(s)]
		require.True(t, ok, "published picture %d (%d bytes) is not one of the clip's", i, len(s))
		switch {
		case i == 0:
			assert.True(t, clip[n].Keyframe, "the stream starts on an IDR")
		case n == (prev+1)%len(clip):
			inOrder++
		case !clip[n].Keyframe:
			t.Errorf("published picture %d is clip picture %d after %d: its reference is missing", i, n, prev)
		}
		prev = n
	}
	t.Logf("replayer sent %d pictures; nginx relayed %d, all the clip's, %d in sequence", p.Replayed, len(slices), inOrder)
	assert.GreaterOrEqual(t, len(slices), minPictures, "pictures relayed")
	gap, packets := audioPacketGap(t, p.File)
	t.Logf("AAC: %d packets, longest step %v", packets, gap)
	assert.LessOrEqual(t, gap, 50*time.Millisecond, "AAC packets are continuous")

	// Lip sync: each IDR's time against the onset of its tone burst.
	var keys []float64
	frames := testenv.VideoFrames(t, p.File)
	for _, f := range frames {
		if f.Keyframe {
			keys = append(keys, f.PTS)
		}
	}
	var onsets []float64
	var bursts []time.Duration
	iv := testenv.Silences(t, p.File, 100*time.Millisecond, 0)
	for i, s := range iv {
		if s.End < 0 {
			continue
		}
		onsets = append(onsets, s.End)
		if i+1 < len(iv) {
			bursts = append(bursts, time.Duration((iv[i+1].Start-s.End)*float64(time.Second)).Round(time.Millisecond))
		}
	}
	require.GreaterOrEqual(t, len(onsets), 4, "tone bursts found: %v", iv)
	var offsets []time.Duration
	worst := time.Duration(0)
	for _, k := range keys {
		best := math.Inf(1)
		for _, o := range onsets {
			if math.Abs(o-k) < math.Abs(best) {
				best = o - k
			}
		}
		if math.Abs(best) > 0.5 {
			continue // no burst decoded for this IDR (start or end of the file)
		}
		d := time.Duration(best * float64(time.Second)).Round(100 * time.Microsecond)
		offsets = append(offsets, d)
		if d.Abs() > worst.Abs() {
			worst = d
		}
	}
	t.Logf("lip sync: %d IDRs at %v s; tone onset minus IDR time: %v (worst %v); burst lengths %v",
		len(keys), keys, offsets, worst, bursts)
	require.GreaterOrEqual(t, len(offsets), 4, "IDRs matched to tone bursts")
	for _, d := range offsets {
		assert.LessOrEqual(t, d.Abs(), maxAV, "audio/video offset %v", d)
	}
	for _, b := range bursts {
		assert.InDelta(t, float64(burst), float64(b), float64(30*time.Millisecond), "a 200 ms burst came out %v long", b)
	}
}
