package session

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
)

// benchSession is a session without goroutines whose receive path the
// benchmarks call directly (no syscalls).
func benchSession(b *testing.B, k media.Kind, frames *int) *Session {
	return benchSessionT(b, k, frames)
}

func benchSessionT(b testing.TB, k media.Kind, frames *int) *Session {
	n := newMemNet()
	s, err := newSession(Config{IP: loopback, Audio: k == media.KindAudio, Video: k == media.KindVideo,
		Listen: n.listen, Clock: newFakeClock(), RTCPInterval: time.Hour,
		OnFrame: func(f *media.Frame) { *frames++ }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	var sp media.StreamSpec
	if k == media.KindAudio {
		sp = audioSpec(peerAudio)
	} else {
		sp = videoSpec(peerVideo, media.Feedback{PLI: true})
	}
	sp.Direction = media.RecvOnly
	if err := s.start([]media.StreamSpec{sp}); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkReceiveAudio measures one PCMA packet through the receive path
// (latching, RTCP statistics, timeline, jitter buffer, depacketizer, frame
// callback) and the owner's per-wake-up work (poll, next deadline).
func BenchmarkReceiveAudio(b *testing.B) {
	frames := 0
	s := benchSession(b, media.KindAudio, &frames)
	pkt := tonePackets(b, 1, 0x1234, 0, 0)[0].Data
	sock := s.audio.rtpSock
	now := t0
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(i*160))
		now = now.Add(20 * time.Millisecond)
		s.receive(sock, pkt, peerAudio, now)
		s.poll(now)
		s.nextDeadline(now)
	}
	b.StopTimer()
	if frames < b.N-1 {
		b.Fatalf("%d frames for %d packets", frames, b.N)
	}
}

// BenchmarkReceiveVideo measures one H.264 packet of the test clip (single
// NAL units, STAP-A, FU-A) through the same path.
func BenchmarkReceiveVideo(b *testing.B) {
	frames := 0
	s := benchSession(b, media.KindVideo, &frames)
	aus, pkts := clipPackets(b, 1, 0x5678, 0)
	sock := s.video.rtpSock
	now := t0
	n := len(pkts)
	bytes := 0
	for _, p := range pkts {
		bytes += len(p.Data)
	}
	b.ReportAllocs()
	b.SetBytes(int64(bytes / n))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := pkts[i%n]
		rep := uint32(i / n)
		binary.BigEndian.PutUint16(p.Data[2:], uint16(i))
		ts := binary.BigEndian.Uint32(p.Data[4:])
		if i >= n {
			// advance by one clip length per repetition
			ts += 3600 * uint32(len(aus))
		}
		_ = rep
		binary.BigEndian.PutUint32(p.Data[4:], ts)
		at := now.Add(time.Duration(i/n)*4*time.Second + p.At)
		s.receive(sock, p.Data, peerVideo, at)
		s.poll(at)
		s.nextDeadline(at)
	}
	b.StopTimer()
	if b.N > 2*n && frames < len(aus) {
		b.Fatalf("%d frames for %d packets", frames, b.N)
	}
}

// TestReceiveAllocs guards the steady state: no allocation per packet on
// the receive path, audio or video.
func TestReceiveAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	frames := 0
	for _, k := range []media.Kind{media.KindAudio, media.KindVideo} {
		s := benchSessionT(t, k, &frames)
		var pkts [][]byte
		from := peerAudio
		sock := s.audio
		if k == media.KindVideo {
			_, ps := clipPackets(t, 8, 0x5678, 0)
			for _, p := range ps {
				pkts = append(pkts, p.Data)
			}
			from, sock = peerVideo, s.video
		} else {
			for _, p := range tonePackets(t, 3000, 0x1234, 0, 0) {
				pkts = append(pkts, p.Data)
			}
		}
		now := t0
		i := 0
		step := func() {
			now = now.Add(10 * time.Millisecond)
			s.receive(sock.rtpSock, pkts[i%len(pkts)], from, now)
			s.poll(now)
			s.nextDeadline(now)
			i++
		}
		// Warm up: every jitter buffer slot (512) grows once to the
		// packet size and the decoder's buffers to the largest frame.
		for i < len(pkts)/2 {
			step()
		}
		allocs := testing.AllocsPerRun(len(pkts)/2-2, step)
		require.Zero(t, allocs, "%v", k)
	}
}

// BenchmarkReceiveVideoNACK is BenchmarkReceiveVideo on a 2 % lossy link
// with a peer that retransmits: every 50th packet is missing when the next
// one arrives (a NACK goes out, the jitter buffer holds the frame) and
// comes back three packets later (recovered). It shows what loss recovery
// costs per packet on top of the clean path.
func BenchmarkReceiveVideoNACK(b *testing.B) {
	frames := 0
	n := newMemNet()
	s, err := newSession(Config{IP: loopback, Video: true, Listen: n.listen, Clock: newFakeClock(), RTCPInterval: time.Hour,
		OnFrame: func(f *media.Frame) { frames++ }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	sp := videoSpec(peerVideo, media.Feedback{NACK: true, PLI: true})
	sp.Direction = media.RecvOnly
	if err := s.start([]media.StreamSpec{sp}); err != nil {
		b.Fatal(err)
	}
	aus, pkts := clipPackets(b, 1, 0x5678, 0)
	sock := s.video.rtpSock
	np := len(pkts)
	buf := make([][]byte, np)
	for i, p := range pkts {
		buf[i] = p.Data
	}
	held := make([]byte, 0, 1600)
	heldAt := -1
	deliver := func(data []byte, at time.Time) {
		s.receive(sock, data, peerVideo, at)
		s.poll(at)
		s.nextDeadline(at)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := buf[i%np]
		binary.BigEndian.PutUint16(p[2:], uint16(i))
		ts := binary.BigEndian.Uint32(p[4:])
		if i >= np {
			ts += 3600 * uint32(len(aus)) // one clip length per repetition
		}
		binary.BigEndian.PutUint32(p[4:], ts)
		at := t0.Add(time.Duration(i/np)*4*time.Second + pkts[i%np].At)
		if i%50 == 25 {
			held, heldAt = append(held[:0], p...), i
			continue // lost, for now
		}
		deliver(p, at)
		if heldAt >= 0 && i == heldAt+3 {
			deliver(held, at) // the retransmission
			heldAt = -1
		}
	}
	b.StopTimer()
	st := s.Stats().Video
	if b.N > 200 && (st.PacketsRecovered == 0 || st.FramesDropped > 0) {
		b.Fatalf("%+v", st)
	}
}
