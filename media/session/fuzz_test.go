package session

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

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

// FuzzReceiveSequence feeds a started session (virtual clock, no
// goroutines) a sequence of RTP packets and Sender Reports built from the
// fuzzer's fields: sequence and timestamp steps, SSRC switches, payload
// types, marker bits, payloads, arrival gaps, SR NTP/RTP times. Nothing may
// panic, every frame is of a negotiated codec, and each kind's frame
// timestamps never go backwards (the common timeline's promise across
// wraparound, SSRC changes, SRs and reordering).
//
// Record: sel (bit 0 video, bit 1 SR, bits 2-3 SSRC), arrival step (ms),
// sequence step (int16), timestamp step (int32), payload type selector,
// marker, payload length (uint16), payload.
func FuzzReceiveSequence(f *testing.F) {
	rec := func(sel, dt byte, dseq int16, dts int32, pt, marker byte, payload []byte) []byte {
		b := []byte{sel, dt, 0, 0, 0, 0, 0, 0, pt, marker, 0, 0}
		binary.BigEndian.PutUint16(b[2:], uint16(dseq))
		binary.BigEndian.PutUint32(b[4:], uint32(dts))
		binary.BigEndian.PutUint16(b[10:], uint16(len(payload)))
		return append(b, payload...)
	}
	var seed []byte
	for i, p := range tonePackets(f, 10, 1, 1, 0) {
		var pkt rtp.Packet
		_ = pkt.Unmarshal(p.Data)
		dts := int32(160)
		if i == 0 {
			dts = 0
		}
		seed = append(seed, rec(0, 20, 1, dts, 0, 0, pkt.Payload)...)
		if i == 5 {
			seed = append(seed, rec(2, 0, 0, 0, 0, 0, nil)...) // SR
		}
	}
	_, v := clipPackets(f, 1, 2, 0)
	var last uint32
	for i, p := range v[:30] {
		var pkt rtp.Packet
		_ = pkt.Unmarshal(p.Data)
		dts := int32(pkt.Timestamp - last)
		if i == 0 {
			dts = 0
		}
		last = pkt.Timestamp
		m := byte(0)
		if pkt.Marker {
			m = 1
		}
		seed = append(seed, rec(1, 2, 1, dts, 0, m, pkt.Payload)...)
	}
	f.Add(seed)
	f.Add(append(rec(0, 20, 1, 0x7fffffff, 0, 0, bytes.Repeat([]byte{0xd5}, 160)), rec(4, 20, -5, -0x80000000, 1, 1, []byte{0xd5})...))

	f.Fuzz(func(t *testing.T, b []byte) {
		n := newMemNet()
		clk := newFakeClock()
		var last [3]time.Duration
		s, err := newSession(Config{IP: loopback, Audio: true, Video: true, Listen: n.listen, Clock: clk,
			OnFrame: func(fr *media.Frame) {
				k := fr.Kind()
				if fr.Codec == media.CodecUnknown || k == media.KindUnknown || (k == media.KindVideo && len(fr.Payload) == 0) {
					t.Fatalf("bad frame %+v", fr)
				}
				if fr.PTS < last[k] {
					t.Fatalf("%v PTS %v after %v", k, fr.PTS, last[k])
				}
				last[k] = fr.PTS
			}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sp := audioSpec(peerAudio)
		sp.Formats = append(sp.Formats, media.PayloadFormat{PayloadType: 111, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2})
		if err := s.start([]media.StreamSpec{sp, videoSpec(peerVideo, media.Feedback{PLI: true, NACK: true})}); err != nil {
			t.Fatal(err)
		}
		pts := [2][]uint8{{8, 0, 101, 111}, {96, 97}}
		ssrcs := [4]uint32{0x1111, 0x2222, 0x3333, 0xffffffff}
		var seq [2]uint16
		var ts [2]uint32
		now := t0
		ntp := uint64(3_980_000_000) << 32
		for len(b) >= 12 {
			sel, dt := b[0], b[1]
			dseq := binary.BigEndian.Uint16(b[2:])
			dts := binary.BigEndian.Uint32(b[4:])
			ptSel, marker := b[8], b[9]&1 == 1
			plen := min(int(binary.BigEndian.Uint16(b[10:])), len(b)-12)
			payload := b[12 : 12+plen]
			b = b[12+plen:]

			k := int(sel & 1)
			st := s.audio
			from := peerAudio
			if k == 1 {
				st, from = s.video, peerVideo
			}
			seq[k] += dseq
			ts[k] += dts
			now = now.Add(time.Duration(dt) * time.Millisecond)
			ntp += uint64(dt) << 32 / 1000
			clk.mu.Lock()
			clk.now = now
			clk.mu.Unlock()
			ssrc := ssrcs[sel>>2&3]
			var pkt []byte
			var sock *socket
			if sel&2 != 0 {
				pkt, _ = rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: ssrc, NTPTime: ntp, RTPTime: ts[k]}})
				sock = st.rtcpSock
			} else {
				p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pts[k][int(ptSel)%len(pts[k])], SequenceNumber: seq[k],
					Timestamp: ts[k], SSRC: ssrc, Marker: marker}, Payload: payload}
				pkt, _ = p.Marshal()
				sock = st.rtpSock
			}
			s.receive(sock, pkt, from, now)
			s.poll(now)
		}
		s.poll(now.Add(time.Hour))
	})
}
