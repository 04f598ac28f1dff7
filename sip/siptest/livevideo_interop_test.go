//go:build interop

package siptest

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtph264"
	"github.com/sipstream/sipstream/sip/sdp"
)

// TestInteropLiveVideoFFmpeg records what the peer's live video sends to a
// caller on a lossy link: a PLI a second in, and from the second to the
// fourth second every 7th packet "lost", NACKed and recovered from its RFC
// 4588 RTX retransmission. The recording, depacketized with media/rtph264
// into Annex B, must decode with ffmpeg without a single error, and ffprobe
// must count every frame received with the keyframes exactly where the peer
// sent them: the regular ones of a 2 s GOP and the requested one.
func TestInteropLiveVideoFFmpeg(t *testing.T) {
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	ffprobe := testenv.LookPath(t, "ffprobe")
	p := newPeer(t, Config{Script: Script{Video: true, LiveVideo: &LiveVideo{GOP: 2 * time.Second}}})
	u := newUAC(t, "udp")
	ctx := testCtx(t)
	offer, err := sdp.NewOffer(sdp.OfferConfig{Addr: netip.MustParseAddr("127.0.0.1"),
		Audio: &sdp.MediaConfig{Port: u.audio.port()},
		Video: &sdp.MediaConfig{Port: u.video.port(), Feedback: true, RTX: true, RTCPMux: true}})
	require.NoError(t, err)
	require.NoError(t, u.video.rtp.SetReadBuffer(4<<20))
	d, err := u.call(ctx, p.URI(), offer.Marshal(), sipgo.AnswerOptions{})
	require.NoError(t, err)
	c, err := p.WaitCall(ctx)
	require.NoError(t, err)
	specs, err := offer.Negotiate(d.InviteResponse.Body())
	require.NoError(t, err)
	video := specs[1]
	h264PT := video.Formats[0].PayloadType
	var rtxPT uint8
	for _, f := range video.Formats {
		if apt, ok := f.AssociatedPayloadType(); ok && apt == h264PT {
			rtxPT = f.PayloadType
		}
	}
	require.NotZero(t, rtxPT, "rtx negotiated")

	const frames = 125 // 5 s at 25 fps
	kept := map[uint16]*rtp.Packet{}
	lost := map[uint16]bool{}
	var mediaSSRC uint32
	markers, n, recovered := 0, 0, 0
	send := func(pkts ...rtcp.Packet) {
		b, err := rtcp.Marshal(pkts)
		require.NoError(t, err)
		_, err = u.video.rtp.WriteToUDPAddrPort(b, video.RemoteRTCP)
		require.NoError(t, err)
	}
	for markers < frames || recovered < len(lost) {
		require.NoError(t, ctx.Err(), "%d frames, %d of %d lost packets recovered; peer %+v", markers, recovered, len(lost), c.VideoSent())
		pk := readRTP(t, u.video.rtp, 1)[0]
		if pk.PayloadType == rtxPT {
			osn := binary.BigEndian.Uint16(pk.Payload)
			if lost[osn] && kept[osn] == nil {
				orig := &rtp.Packet{Header: pk.Header, Payload: pk.Payload[2:]}
				orig.SSRC, orig.PayloadType, orig.SequenceNumber = mediaSSRC, h264PT, osn
				kept[osn] = orig
				recovered++
			}
			continue
		}
		require.Equal(t, h264PT, pk.PayloadType)
		if markers >= frames {
			continue // only waiting for retransmissions now
		}
		mediaSSRC = pk.SSRC
		n++
		if markers >= 50 && markers < 100 && n%7 == 0 {
			lost[pk.SequenceNumber] = true
			send(&rtcp.ReceiverReport{SSRC: 9}, &rtcp.TransportLayerNack{SenderSSRC: 9, MediaSSRC: mediaSSRC,
				Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{pk.SequenceNumber})})
		} else {
			kept[pk.SequenceNumber] = pk
		}
		if pk.Marker {
			markers++
			if markers == 25 {
				send(&rtcp.ReceiverReport{SSRC: 9}, &rtcp.PictureLossIndication{SenderSSRC: 9, MediaSSRC: mediaSSRC})
			}
		}
	}
	require.NotEmpty(t, lost)

	// In sequence order, without a hole.
	seqs := make([]uint16, 0, len(kept))
	for s := range kept {
		seqs = append(seqs, s)
	}
	first := seqs[0]
	for _, s := range seqs {
		if int16(s-first) < 0 {
			first = s
		}
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i]-first < seqs[j]-first })
	for i := 1; i < len(seqs); i++ {
		require.Equal(t, seqs[i-1]+1, seqs[i], "hole in the recording")
	}
	dec, err := rtph264.NewDecoder(rtph264.DecoderConfig{AnnexB: true})
	require.NoError(t, err)
	var annexB []byte
	var keys []int
	count := 0
	for _, s := range seqs {
		f, _, err := dec.Decode(kept[s])
		if errors.Is(err, rtph264.ErrMorePacketsNeeded) {
			continue
		}
		require.NoError(t, err)
		if f.Keyframe {
			keys = append(keys, count)
		}
		annexB = append(annexB, f.Payload...)
		count++
	}
	require.Equal(t, frames, count)
	path := filepath.Join(t.TempDir(), "x.h264")
	require.NoError(t, os.WriteFile(path, annexB, 0o644))

	testenv.RunClean(t, ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-f", "h264", "-i", path, "-f", "null", "-")
	probe := testenv.RunClean(t, ffprobe, "-v", "error", "-f", "h264", "-show_entries", "frame=key_frame", "-of", "csv=p=0", path)
	var probeKeys []int
	lines := strings.Fields(string(probe))
	for i, l := range lines {
		if strings.TrimRight(l, ",") == "1" {
			probeKeys = append(probeKeys, i)
		}
	}
	assert.Len(t, lines, frames, "frames ffprobe decoded")
	assert.Equal(t, keys, probeKeys, "keyframes where the peer sent them")

	st := c.VideoSent()
	assert.Equal(t, 1, st.RequestedKeyframes)
	assert.GreaterOrEqual(t, len(keys), 3, "regular and requested keyframes: %v", keys)
	assert.Equal(t, len(lost), st.RetransmittedRTX)
	assert.Equal(t, media.CodecH264, video.Formats[0].Codec)
	t.Logf("%d frames, keyframes at %v, %d packets lost and recovered over RTX, %d bytes; peer stats %+v",
		count, keys, len(lost), len(annexB), st)
	require.NoError(t, d.Bye(ctx))
}
