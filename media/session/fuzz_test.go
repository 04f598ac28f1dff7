package session

import (
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/sipstream/sipstream/media"
)

// FuzzReceive feeds arbitrary datagrams to every socket of a started
// session (RTP and RTCP, audio and video, SRTP off): nothing may panic, and
// whatever is emitted is a frame of a negotiated codec.
func FuzzReceive(f *testing.F) {
	for _, p := range tonePackets(f, 3, 1, 65535, 0) {
		f.Add(byte(0), p.Data)
	}
	_, v := clipPackets(f, 1, 2, 0)
	for _, p := range v[:8] {
		f.Add(byte(2), p.Data)
	}
	sr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: 1, NTPTime: 1 << 40, RTPTime: 5}, &rtcp.Goodbye{Sources: []uint32{1}}})
	f.Add(byte(1), sr)
	f.Add(byte(3), sr)
	f.Add(byte(0), []byte{0x80, 101, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 5, 0x8a, 0, 160})
	f.Fuzz(func(t *testing.T, sel byte, b []byte) {
		n := newMemNet()
		emitted := 0
		s, err := newSession(Config{IP: loopback, Audio: true, Video: true, Listen: n.listen, Clock: newFakeClock(),
			OnFrame: func(fr *media.Frame) {
				emitted++
				if fr.Codec == media.CodecUnknown || (fr.Kind() == media.KindVideo && len(fr.Payload) == 0) {
					t.Fatalf("bad frame %+v", fr)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sp := audioSpec(peerAudio)
		sp.Formats = append(sp.Formats, media.PayloadFormat{PayloadType: 111, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2})
		if err := s.start([]media.StreamSpec{sp, videoSpec(peerVideo, media.Feedback{PLI: true})}); err != nil {
			t.Fatal(err)
		}
		socks := []*socket{s.audio.rtpSock, s.audio.rtcpSock, s.video.rtpSock, s.video.rtcpSock}
		now := t0
		// the same datagram twice and once more later: duplicates, jitter
		for i := 0; i < 3; i++ {
			sk := socks[int(sel)%len(socks)]
			addr := peerAudio
			if sk.st.kind == media.KindVideo {
				addr = peerVideo
			}
			buf := append([]byte(nil), b...)
			s.receive(sk, buf, addr, now)
			s.poll(now)
			now = now.Add(time.Duration(i) * 500 * time.Millisecond)
		}
		s.poll(now.Add(time.Hour))
	})
}
