package rtph264_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/netsim"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media/jitter"
	"github.com/sipstream/sipstream/media/rtph264"
)

// clipAU is one access unit of the test clip with its RTP timestamp.
type clipAU struct {
	ts       uint32
	nalus    [][]byte
	keyframe bool
}

// clipPackets packetizes the clip repeated reps times (25 fps, timestamps
// continuing) and returns the access units and the marshalled packets with
// their send times.
func clipPackets(t testing.TB, reps int) ([]clipAU, []netsim.Packet) {
	t.Helper()
	enc, err := rtph264.NewEncoder(rtph264.EncoderConfig{PayloadType: 96, SSRC: 0x5eed, InitialSequenceNumber: 65000})
	require.NoError(t, err)
	var aus []clipAU
	var pkts []netsim.Packet
	base := testmedia.ClipAccessUnits()
	for r := 0; r < reps; r++ {
		for _, au := range base {
			i := len(aus)
			ts := uint32(0xfff00000 + i*3600) // wraps the 32-bit timestamp
			aus = append(aus, clipAU{ts: ts, nalus: au.NALUs, keyframe: au.Keyframe})
			ps, err := enc.Encode(au.NALUs, ts)
			require.NoError(t, err)
			for k, p := range ps {
				raw, err := p.Marshal()
				require.NoError(t, err)
				// a sender paces a picture's packets over a few ms
				pkts = append(pkts, netsim.Packet{At: time.Duration(i)*40*time.Millisecond + time.Duration(k)*200*time.Microsecond, Data: raw})
			}
		}
	}
	return aus, pkts
}

// emitted is an access unit that came out of the decoder.
type emitted struct {
	ts       uint32
	payload  []byte
	keyframe bool
}

// runPipeline feeds the arriving packets through a jitter buffer and a
// decoder, driving the buffer's deadlines like a session would, and returns
// what the decoder emitted and how many times it asked for a keyframe.
func runPipeline(t testing.TB, arrivals []netsim.Packet, annexB bool) (out []emitted, keyframeRequests int, st jitter.Stats) {
	t.Helper()
	jb, err := jitter.New(jitter.Config{Delay: 60 * time.Millisecond, ClockRate: 90000})
	require.NoError(t, err)
	dec, err := rtph264.NewDecoder(rtph264.DecoderConfig{AnnexB: annexB})
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
				out = append(out, emitted{ts: ts, payload: bytes.Clone(fr.Payload), keyframe: fr.Keyframe})
			case errors.Is(err, rtph264.ErrNeedKeyframe):
				keyframeRequests++
			case errors.Is(err, rtph264.ErrMorePacketsNeeded):
			default:
				t.Fatalf("decode: %v", err)
			}
		}
	}
	for _, a := range arrivals {
		now := t0.Add(a.At)
		// Deadlines that passed before this arrival.
		for d, ok := jb.NextDeadline(); ok && d.Before(now); d, ok = jb.NextDeadline() {
			release(d)
		}
		require.NoError(t, jb.Push(a.Data, now))
		release(now)
	}
	release(t0.Add(time.Hour))
	return out, keyframeRequests, jb.Stats()
}

func TestRoundTripClip(t *testing.T) {
	aus, pkts := clipPackets(t, 1)
	arrivals, _, err := netsim.Schedule(netsim.Config{Seed: 1, Delay: 20 * time.Millisecond, Jitter: 30 * time.Millisecond}, pkts)
	require.NoError(t, err)
	for _, annexB := range []bool{false, true} {
		out, req, st := runPipeline(t, arrivals, annexB)
		require.Zero(t, req)
		require.Zero(t, st.Lost)
		require.Len(t, out, len(aus))
		for i, au := range aus {
			want := rtph264.JoinAVC(au.nalus)
			if annexB {
				want = rtph264.JoinAnnexB(au.nalus)
			}
			require.Equal(t, au.ts, out[i].ts)
			require.Equal(t, au.keyframe, out[i].keyframe)
			require.True(t, bytes.Equal(want, out[i].payload), "access unit %d differs", i)
		}
	}
}

// lossyConfig is the acceptance scenario: 5 % loss, 30 ms jitter, 2 %
// reordering.
func lossyConfig(seed uint64) netsim.Config {
	return netsim.Config{Seed: seed, Loss: 0.05, Delay: 20 * time.Millisecond, Jitter: 30 * time.Millisecond, Reorder: 0.02, ReorderDelay: 30 * time.Millisecond}
}

// checkLossy verifies that every emitted access unit is the original one of
// its timestamp, byte for byte, and that after any access unit that did not
// come out, the next one that does is an IDR.
func checkLossy(t *testing.T, aus []clipAU, out []emitted, annexB bool) (dropped int) {
	t.Helper()
	byTS := map[uint32]int{}
	for i, au := range aus {
		byTS[au.ts] = i
	}
	next := 0 // index in aus of the next access unit not yet accounted for
	hole := true
	for _, e := range out {
		i, ok := byTS[e.ts]
		require.True(t, ok, "emitted unknown timestamp %d", e.ts)
		require.GreaterOrEqual(t, i, next, "access unit %d emitted out of order or twice", i)
		if i > next {
			hole = true
			dropped += i - next
		}
		want := rtph264.JoinAVC(aus[i].nalus)
		if annexB {
			want = rtph264.JoinAnnexB(aus[i].nalus)
		}
		require.True(t, bytes.Equal(want, e.payload), "access unit %d emitted broken", i)
		if hole {
			require.True(t, e.keyframe, "access unit %d emitted after a hole without an IDR first", i)
			hole = false
		}
		next = i + 1
	}
	return dropped + len(aus) - next
}

func TestLossyNoBrokenFrames(t *testing.T) {
	aus, pkts := clipPackets(t, 3)
	for seed := uint64(1); seed <= 5; seed++ {
		arrivals, ns, err := netsim.Schedule(lossyConfig(seed), pkts)
		require.NoError(t, err)
		out, req, st := runPipeline(t, arrivals, false)
		dropped := checkLossy(t, aus, out, false)
		t.Logf("seed %d: %d packets, %d lost and %d reordered by the network; jitter buffer: lost %d late %d; %d of %d access units emitted, %d dropped, %d keyframe requests",
			seed, ns.Sent, ns.Lost, ns.Reordered, st.Lost, st.Late, len(out), len(aus), dropped, req)
		require.NotZero(t, ns.Lost)
		require.NotZero(t, ns.Reordered)
		require.NotZero(t, dropped, "the scenario must actually lose access units")
		// Without keyframe requests answered, a hole costs the rest of the
		// 1 s GOP: about a fifth of the pictures remain at 5 % loss.
		require.Greater(t, len(out), len(aus)/10, "too little came out")
		require.GreaterOrEqual(t, req, 1)
	}
}
