package session

import (
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtpvp8"
)

// TestRTCPMux: with rtcp-mux, RTCP goes to the peer's RTP address from the
// RTP socket, and RTCP arriving on the RTP port is recognised.
func TestRTCPMux(t *testing.T) {
	h := newHarness(t, Config{Audio: true, RTCPInterval: time.Second})
	sp := audioSpec(peerAudio)
	sp.RTCPMux = true
	h.start(sp)
	for _, p := range tonePackets(t, 25, 0x51, 1, 0) {
		h.deliver(media.KindAudio, peerAudio, p.Data, t0.Add(p.At))
	}
	sr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: 0x51, NTPTime: 1 << 45, RTPTime: 100}})
	h.deliver(media.KindAudio, peerAudio, sr, t0.Add(520*time.Millisecond))
	h.advance(t0.Add(2 * time.Second))
	require.Equal(t, uint64(1), h.s.Stats().Audio.SenderReports)
	require.Len(t, h.frames[media.KindAudio], 25)
	var reports int
	for _, p := range h.net.takeTimed(peerAudio) {
		require.Equal(t, h.s.audio.port, int(p.from.Port()), "sent from the RTP socket")
		if ps, err := rtcp.Unmarshal(p.data); err == nil && p.data[1] >= 200 && p.data[1] <= 204 {
			for _, rp := range ps {
				if _, ok := rp.(*rtcp.SenderReport); ok {
					reports++
				}
			}
		}
	}
	require.Equal(t, 2, reports, "SRs at 0.5 s and 1.5 s (silence was sent)")
	require.Empty(t, h.net.take(rtcpAddr(peerAudio, 1)))
}

// TestVP8 sends the VP8 clip through the session: every frame comes out
// byte for byte, with key frames marked.
func TestVP8(t *testing.T) {
	ivf, err := os.ReadFile("../rtpvp8/testdata/clip_176x144_15fps.ivf")
	require.NoError(t, err)
	var frames [][]byte
	for b := ivf[32:]; len(b) >= 12; {
		n := int(binary.LittleEndian.Uint32(b))
		frames = append(frames, b[12:12+n])
		b = b[12+n:]
	}
	require.Len(t, frames, 30)
	h := newHarness(t, Config{Video: true})
	h.start(videoSpec(peerVideo, media.Feedback{PLI: true}))
	enc, err := rtpvp8.NewEncoder(rtpvp8.EncoderConfig{PayloadType: 97, SSRC: 0x88, PictureID: true})
	require.NoError(t, err)
	for i, f := range frames {
		pkts, err := enc.Encode(f, uint32(i*6000))
		require.NoError(t, err)
		for _, p := range pkts {
			h.deliver(media.KindVideo, peerVideo, marshalRTP(t, p), t0.Add(time.Duration(i)*time.Second/15))
		}
	}
	h.advance(h.now.Add(time.Second))
	out := h.frames[media.KindVideo]
	require.Len(t, out, 30)
	for i, f := range out {
		require.Equal(t, media.CodecVP8, f.Codec)
		require.Equal(t, frames[i], f.Payload)
		require.Equal(t, i%10 == 0, f.Keyframe)
		if i > 0 {
			require.InDelta(t, float64(time.Second/15), float64(f.PTS-out[i-1].PTS), float64(time.Millisecond))
		}
	}
}
