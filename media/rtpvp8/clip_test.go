package rtpvp8_test

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/netsim"
	"github.com/sipstream/sipstream/media/jitter"
	"github.com/sipstream/sipstream/media/rtpvp8"
)

// The clip was made with:
//
//	ffmpeg -f lavfi -i testsrc2=size=176x144:rate=15 -t 2 -c:v libvpx \
//	  -g 10 -b:v 150k clip_176x144_15fps.ivf
//
// It has 30 frames at 15 fps and a key frame every 10 frames.
//
//go:embed testdata/clip_176x144_15fps.ivf
var clipIVF []byte

// readIVF returns the frames of an IVF file (a 32-byte file header, then a
// 12-byte header before each frame).
func readIVF(t testing.TB, b []byte) [][]byte {
	t.Helper()
	require.GreaterOrEqual(t, len(b), 32)
	require.Equal(t, "DKIF", string(b[:4]))
	hdr := int(binary.LittleEndian.Uint16(b[6:]))
	b = b[hdr:]
	var frames [][]byte
	for len(b) >= 12 {
		n := int(binary.LittleEndian.Uint32(b))
		b = b[12:]
		require.LessOrEqual(t, n, len(b))
		frames = append(frames, b[:n])
		b = b[n:]
	}
	return frames
}

// writeIVF returns an IVF file of VP8 frames at 15 fps.
func writeIVF(frames [][]byte, w, h int) []byte {
	b := []byte("DKIF")
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint16(b, 32)
	b = append(b, "VP80"...)
	b = binary.LittleEndian.AppendUint16(b, uint16(w))
	b = binary.LittleEndian.AppendUint16(b, uint16(h))
	b = binary.LittleEndian.AppendUint32(b, 15)
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(frames)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	for i, f := range frames {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(f)))
		b = binary.LittleEndian.AppendUint64(b, uint64(i))
		b = append(b, f...)
	}
	return b
}

type clipFrame struct {
	ts    uint32
	frame []byte
	key   bool
}

// clipPackets packetizes the clip repeated reps times (15 fps, a 1200-byte
// MTU, PictureIDs, timestamps wrapping) and returns the frames and the
// packets with their send times.
func clipPackets(t testing.TB, reps int) ([]clipFrame, []netsim.Packet) {
	t.Helper()
	enc, err := rtpvp8.NewEncoder(rtpvp8.EncoderConfig{PayloadType: 96, SSRC: 0xfeed, InitialSequenceNumber: 65000, PictureID: true})
	require.NoError(t, err)
	var frames []clipFrame
	var pkts []netsim.Packet
	base := readIVF(t, clipIVF)
	for r := 0; r < reps; r++ {
		for _, f := range base {
			i := len(frames)
			ts := uint32(0xfff00000 + i*6000)
			frames = append(frames, clipFrame{ts: ts, frame: f, key: rtpvp8.IsKeyFrame(f)})
			ps, err := enc.Encode(f, ts)
			require.NoError(t, err)
			for k, p := range ps {
				raw, err := p.Marshal()
				require.NoError(t, err)
				pkts = append(pkts, netsim.Packet{At: time.Duration(i)*time.Second/15 + time.Duration(k)*200*time.Microsecond, Data: raw})
			}
		}
	}
	return frames, pkts
}

type emitted struct {
	ts    uint32
	frame []byte
	key   bool
}

// runPipeline feeds the arrivals through a jitter buffer and a decoder
// driven like a session drives them.
func runPipeline(t testing.TB, arrivals []netsim.Packet) (out []emitted, needKey int) {
	t.Helper()
	jb, err := jitter.New(jitter.Config{Delay: 60 * time.Millisecond, ClockRate: 90000})
	require.NoError(t, err)
	dec, err := rtpvp8.NewDecoder(rtpvp8.DecoderConfig{})
	require.NoError(t, err)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	release := func(now time.Time) {
		for {
			pkt, ok := jb.Pop(now)
			if !ok {
				return
			}
			fr, ts, err := dec.Decode(pkt)
			switch {
			case err == nil:
				out = append(out, emitted{ts: ts, frame: bytes.Clone(fr.Payload), key: fr.Keyframe})
			case errors.Is(err, rtpvp8.ErrNeedKeyframe):
				needKey++
			case errors.Is(err, rtpvp8.ErrMorePacketsNeeded):
			default:
				t.Fatalf("decode: %v", err)
			}
		}
	}
	for _, a := range arrivals {
		now := t0.Add(a.At)
		for {
			dl, ok := jb.NextDeadline()
			if !ok || !dl.Before(now) {
				break
			}
			release(dl)
		}
		require.NoError(t, jb.Push(a.Data, now))
		release(now)
	}
	release(t0.Add(time.Hour))
	return out, needKey
}

func TestClipRoundTrip(t *testing.T) {
	frames, pkts := clipPackets(t, 2)
	out, needKey := runPipeline(t, pkts)
	require.Zero(t, needKey)
	require.Len(t, out, len(frames))
	for i, e := range out {
		require.Equal(t, frames[i].ts, e.ts)
		require.Equal(t, frames[i].frame, e.frame, "frame %d", i)
		require.Equal(t, frames[i].key, e.key)
	}
}

// TestClipLossy: 5 % loss, 30 ms jitter, 2 % reordering. Every emitted
// frame must be an original frame byte for byte, in order, and after the
// first key frame following a drop, only frames since a key frame whose
// predecessors all came out.
func TestClipLossy(t *testing.T) {
	frames, pkts := clipPackets(t, 10)
	byTS := map[uint32]int{}
	for i, f := range frames {
		byTS[f.ts] = i
	}
	for seed := uint64(1); seed <= 3; seed++ {
		arr, st, err := netsim.Schedule(netsim.Config{Seed: seed, Loss: 0.05, Jitter: 30 * time.Millisecond, Reorder: 0.02}, pkts)
		require.NoError(t, err)
		require.NotZero(t, st.Lost)
		out, needKey := runPipeline(t, arr)
		require.NotZero(t, needKey)
		require.NotEmpty(t, out)
		last := -1
		for _, e := range out {
			i, ok := byTS[e.ts]
			require.True(t, ok)
			require.Greater(t, i, last)
			require.Equal(t, frames[i].frame, e.frame, "seed %d frame %d", seed, i)
			if !e.key {
				// an inter frame is only emitted right after the frame before it
				require.Equal(t, last, i-1, "seed %d: frame %d emitted after a missing reference", seed, i)
			}
			last = i
		}
		t.Logf("seed %d: %d of %d frames emitted, %d packets lost, %d keyframe requests", seed, len(out), len(frames), st.Lost, needKey)
	}
}
