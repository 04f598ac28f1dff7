package rtpaudio_test

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/netsim"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/jitter"
	"github.com/sipstream/sipstream/media/rtpaudio"
)

// alaw encodes one linear sample to G.711 A-law (ITU-T G.711, the classic
// segment search); test-only, media/g711 is the library's codec.
func alaw(s int16) byte {
	pcm := int(s) >> 3
	mask := byte(0xd5)
	if pcm < 0 {
		mask = 0x55
		pcm = -pcm - 1
	}
	seg := 0
	for seg < 8 && pcm > (0x1f<<seg|(1<<seg-1)) {
		seg++
	}
	if seg >= 8 {
		return 0x7f ^ mask
	}
	v := byte(seg << 4)
	if seg < 2 {
		v |= byte(pcm>>1) & 0x0f
	} else {
		v |= byte(pcm>>seg) & 0x0f
	}
	return v ^ mask
}

func unalaw(a byte) int16 {
	a ^= 0x55
	t := int(a&0x0f) << 4
	switch seg := int(a&0x70) >> 4; seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

// TestToneThroughJitter sends one second of a 1 kHz tone as PCMA through a
// jittering, reordering network, the jitter buffer and the decoder, and
// checks the tone with a Goertzel detector on the decoded samples.
func TestToneThroughJitter(t *testing.T) {
	enc, err := rtpaudio.NewEncoder(rtpaudio.EncoderConfig{Format: rtpaudio.Format{Codec: media.CodecPCMA}, PayloadType: 8, SSRC: 77, InitialSequenceNumber: 65500, InitialTimestamp: 1 << 31})
	require.NoError(t, err)
	var sent []netsim.Packet
	for i := 0; i < 50; i++ {
		pcm := testmedia.Tone(1000, 8000, i*160, 160, 0.5)
		payload := make([]byte, 160)
		for k, s := range pcm {
			payload[k] = alaw(s)
		}
		p, err := enc.Encode(payload)
		require.NoError(t, err)
		raw, err := p.Marshal()
		require.NoError(t, err)
		sent = append(sent, netsim.Packet{At: time.Duration(i) * 20 * time.Millisecond, Data: raw})
	}
	arrivals, ns, err := netsim.Schedule(netsim.Config{Seed: 9, Jitter: 30 * time.Millisecond, Reorder: 0.1, Duplicate: 0.05}, sent)
	require.NoError(t, err)
	require.NotZero(t, ns.Reordered)

	jb, err := jitter.New(jitter.Config{ClockRate: 8000, Adaptive: true})
	require.NoError(t, err)
	dec, err := rtpaudio.NewDecoder(rtpaudio.Format{Codec: media.CodecPCMA})
	require.NoError(t, err)
	t0 := time.Unix(0, 0)
	var pcm []int16
	var total time.Duration
	nextTS := uint32(1 << 31)
	pop := func(now time.Time) {
		for p, ok := jb.Pop(now); ok; p, ok = jb.Pop(now) {
			fr, ts, err := dec.Decode(p)
			require.NoError(t, err)
			require.Equal(t, nextTS, ts)
			nextTS += 160
			total += fr.Duration
			for _, a := range fr.Payload {
				pcm = append(pcm, unalaw(a))
			}
		}
	}
	for _, a := range arrivals {
		pop(t0.Add(a.At))
		require.NoError(t, jb.Push(a.Data, t0.Add(a.At)))
		pop(t0.Add(a.At))
	}
	pop(t0.Add(time.Hour))
	require.Equal(t, time.Second, total)
	require.Len(t, pcm, 8000)
	require.Greater(t, testmedia.Goertzel(pcm, 8000, 1000), 0.9)
	require.Less(t, testmedia.Goertzel(pcm, 8000, 1400), 0.05)
	require.Zero(t, jb.Stats().Lost)
}

// BenchmarkPCMAPipeline measures one 20 ms PCMA packet from its bytes
// (as read from a socket) through the jitter buffer (Unmarshal included)
// and the depacketizer.
func BenchmarkPCMAPipeline(b *testing.B) {
	jb, err := jitter.New(jitter.Config{ClockRate: 8000, Capacity: 64})
	if err != nil {
		b.Fatal(err)
	}
	dec, err := rtpaudio.NewDecoder(rtpaudio.Format{Codec: media.CodecPCMA})
	if err != nil {
		b.Fatal(err)
	}
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SSRC: 1}, Payload: make([]byte, 160)}
	raw, err := p.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Unix(0, 0)
	var seq uint16
	var ts uint32
	var sink time.Duration
	b.ReportAllocs()
	for b.Loop() {
		binary.BigEndian.PutUint16(raw[2:], seq)
		binary.BigEndian.PutUint32(raw[4:], ts)
		seq++
		ts += 160
		now = now.Add(20 * time.Millisecond)
		if err := jb.Push(raw, now); err != nil {
			b.Fatal(err)
		}
		for pkt, ok := jb.Pop(now); ok; pkt, ok = jb.Pop(now) {
			fr, _, err := dec.Decode(pkt)
			if err != nil && !errors.Is(err, rtpaudio.ErrEmpty) {
				b.Fatal(err)
			}
			sink += fr.Duration
		}
	}
	if sink == 0 {
		b.Fatal("nothing decoded")
	}
}
