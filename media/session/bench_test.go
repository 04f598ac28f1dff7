package session

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/netsim"
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

// TestReceiveBatchAllocs guards the owner's whole per-packet path as the
// readers feed it: a batch from the shared pool, dispatched, returned,
// then the owner's poll and next deadline. No allocation per packet, audio
// and video, in order and with every tenth pair of packets swapped.
func TestReceiveBatchAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	for _, k := range []media.Kind{media.KindAudio, media.KindVideo} {
		for _, reorder := range []bool{false, true} {
			frames := 0
			s := benchSessionT(t, k, &frames)
			var pkts []netsim.Packet
			from, st := peerAudio, s.audio
			if k == media.KindVideo {
				_, pkts = clipPackets(t, 8, 0x5678, 0)
				from, st = peerVideo, s.video
			} else {
				pkts = tonePackets(t, 3000, 0x1234, 0, 0)
			}
			if reorder {
				for i := 4; i+1 < len(pkts); i += 10 {
					pkts[i].Data, pkts[i+1].Data = pkts[i+1].Data, pkts[i].Data
				}
			}
			const per = 3 // packets per batch
			i := 0
			step := func() {
				b := getBatch(&multiPool)
				for b.n < per && i < len(pkts) {
					p := pkts[i]
					b.pkts[b.n] = rxPacket{n: copy(b.buf(b.n), p.Data), from: from}
					b.at = t0.Add(p.At)
					b.n++
					i++
				}
				b.sock = st.rtpSock
				now := b.at
				s.receiveBatch(b)
				s.poll(now)
				s.nextDeadline(now)
			}
			// Warm up: jitter buffer slots and decoder buffers grow once.
			for i < len(pkts)/2 {
				step()
			}
			runs := (len(pkts)-i)/per - 2
			allocs := testing.AllocsPerRun(runs, step)
			require.Zero(t, allocs, "%v reorder=%v", k, reorder)
			stats := s.Stats()
			require.NotZero(t, frames)
			require.Zero(t, stats.Audio.PacketsLost+stats.Video.PacketsLost, "%v reorder=%v", k, reorder)
			if reorder {
				require.Zero(t, stats.Audio.PacketsLate+stats.Video.PacketsLate)
			}
		}
	}
}

// BenchmarkReceiveVideoBatch is BenchmarkReceiveVideo as the readers feed
// the owner: packets copied into pooled batches of three, dispatched,
// the batch returned, then poll and next deadline once per batch.
func BenchmarkReceiveVideoBatch(b *testing.B) {
	frames := 0
	s := benchSession(b, media.KindVideo, &frames)
	aus, pkts := clipPackets(b, 1, 0x5678, 0)
	sock := s.video.rtpSock
	n := len(pkts)
	const per = 3
	b.ReportAllocs()
	b.ResetTimer()
	var bt *rxBatch
	for i := 0; i < b.N; i++ {
		p := pkts[i%n]
		binary.BigEndian.PutUint16(p.Data[2:], uint16(i))
		ts := binary.BigEndian.Uint32(p.Data[4:])
		if i >= n {
			ts += 3600 * uint32(len(aus)) // one clip length per repetition
		}
		binary.BigEndian.PutUint32(p.Data[4:], ts)
		if bt == nil {
			bt = getBatch(&multiPool)
		}
		bt.pkts[bt.n] = rxPacket{n: copy(bt.buf(bt.n), p.Data), from: peerVideo}
		bt.n++
		bt.at = t0.Add(time.Duration(i/n)*4*time.Second + p.At)
		if bt.n == per || i == b.N-1 {
			bt.sock = sock
			at := bt.at
			s.receiveBatch(bt)
			bt = nil
			s.poll(at)
			s.nextDeadline(at)
		}
	}
	b.StopTimer()
	if b.N > 2*n && frames < len(aus) {
		b.Fatalf("%d frames for %d packets", frames, b.N)
	}
}
