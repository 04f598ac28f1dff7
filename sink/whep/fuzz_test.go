package whep

import (
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sipstream/sipstream/media"
)

func rtpPacket(seq uint16, ts uint32, marker bool, payload []byte) *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: marker}, Payload: payload}
}

func FuzzParseSDPFrag(f *testing.F) {
	for _, tc := range fragCases {
		f.Add(tc.frag)
	}
	remote := &webrtc.SessionDescription{SDP: "v=0\r\na=ice-ufrag:abcd\r\n"}
	f.Fuzz(func(t *testing.T, frag string) {
		cands, err := parseSDPFrag(frag, remote)
		if err != nil && len(cands) != 0 {
			t.Fatal("candidates with an error")
		}
	})
}

func FuzzParseOffer(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=42e01f\r\n")
	f.Add("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n")
	f.Fuzz(func(t *testing.T, offer string) {
		offered, err := parseOffer(offer)
		if err != nil {
			return
		}
		p := plan(offered, media.CodecH264, media.CodecPCMA, "42e01f")
		if len(p.audioPTs) > 1 {
			t.Fatal("more than one audio payload type")
		}
	})
}

// Malformed AVC payloads are rejected, never a panic; valid ones packetize
// within the MTU.
func FuzzPacketize(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 0x65, 0x88}, true)
	f.Add([]byte{0, 0, 0, 2, 0x67, 0x42, 0, 0, 0, 1, 0x68}, true)
	f.Add([]byte{0, 0, 0, 9, 1}, false)
	f.Fuzz(func(t *testing.T, payload []byte, key bool) {
		p, err := newPacketizer(300, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		fr := media.Frame{Codec: media.CodecH264, Keyframe: key, Payload: payload}
		u, err := p.packetize(&fr)
		if err != nil {
			return
		}
		for _, pl := range u.payloads {
			if len(pl)+12 > 300 {
				t.Fatalf("packet of %d bytes over the MTU", len(pl)+12)
			}
		}
	})
}
