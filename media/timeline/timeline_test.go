package timeline

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)

const ntpBase = uint64(3_980_000_000) << 32

func ntpAt(c time.Duration) uint64 {
	sec := uint64(c / time.Second)
	frac := uint64(c%time.Second) * (1 << 32) / uint64(time.Second)
	return ntpBase + sec<<32 + frac
}

// event is a packet or SR of a simulated call, at its arrival time.
type event struct {
	at    time.Duration // arrival
	video bool
	sr    bool
	c     time.Duration // capture (sender) time
	ts    uint32
	ssrc  uint32
}

type sender struct {
	ssrc    uint32
	rate    uint32
	base    uint32
	every   time.Duration
	delay   time.Duration
	jitter  time.Duration
	video   bool
	srFirst time.Duration // first SR (negative: none)
}

func (s sender) ts(c time.Duration) uint32 {
	return s.base + uint32(int64(c)*int64(s.rate)/int64(time.Second))
}

func schedule(rng *rand.Rand, dur time.Duration, ss ...sender) []event {
	var evs []event
	for _, s := range ss {
		for c := time.Duration(0); c < dur; c += s.every {
			j := time.Duration(0)
			if s.jitter > 0 {
				j = time.Duration(rng.Int64N(int64(s.jitter)))
			}
			evs = append(evs, event{at: c + s.delay + j, video: s.video, c: c, ts: s.ts(c), ssrc: s.ssrc})
		}
		if s.srFirst >= 0 {
			for c := s.srFirst; c < dur; c += time.Second {
				evs = append(evs, event{at: c + s.delay, video: s.video, sr: true, c: c, ts: s.ts(c), ssrc: s.ssrc})
			}
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
	return evs
}

type out struct {
	c   time.Duration
	pts time.Duration
}

func run(t *testing.T, tl *Timeline, evs []event, rates map[bool]uint32) (audio, video []out) {
	t.Helper()
	streams := map[bool]*Stream{false: tl.NewStream(), true: tl.NewStream()}
	for _, e := range evs {
		s := streams[e.video]
		if e.sr {
			s.SenderReport(e.ssrc, ntpAt(e.c), e.ts, t0.Add(e.at))
			continue
		}
		s.Observe(e.ssrc, e.ts, rates[e.video], t0.Add(e.at))
		p := s.Map(e.ssrc, e.ts)
		if e.video {
			video = append(video, out{e.c, p})
		} else {
			audio = append(audio, out{e.c, p})
		}
	}
	return audio, video
}

func requireSmooth(t *testing.T, o []out, name string) {
	t.Helper()
	for i := 1; i < len(o); i++ {
		dc := o[i].c - o[i-1].c
		dp := o[i].pts - o[i-1].pts
		require.GreaterOrEqual(t, dp, 0*time.Millisecond, "%s %d", name, i)
		// 5 % slew, plus up to 1 ms for a lower minimum delay absorbed
		require.InDelta(t, float64(dc), float64(dp), float64(dc)/20+float64(time.Millisecond), "%s frame %d: capture step %v, pts step %v", name, i, dc, dp)
	}
}

// TestLipSyncWithSenderReports: audio arrives with no delay, video 120 ms
// later; both send SRs from 0.5 s on. Before the SRs the streams are placed
// by arrival (video 120 ms late); after them the offset converges within
// 20 ms of the truth without any jump.
func TestLipSyncWithSenderReports(t *testing.T) {
	tl, err := New(Config{})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	evs := schedule(rng, 10*time.Second,
		sender{ssrc: 1, rate: 8000, base: 0xffff0000, every: 20 * time.Millisecond, srFirst: 500 * time.Millisecond},
		sender{ssrc: 2, rate: 90000, base: 0xfff00000, every: 40 * time.Millisecond, delay: 120 * time.Millisecond, video: true, srFirst: 700 * time.Millisecond},
	)
	audio, video := run(t, tl, evs, map[bool]uint32{false: 8000, true: 90000})
	requireSmooth(t, audio, "audio")
	requireSmooth(t, video, "video")
	byC := map[time.Duration]time.Duration{}
	for _, a := range audio {
		byC[a.c] = a.pts
	}
	early := video[5]
	require.InDelta(t, float64(120*time.Millisecond), float64(early.pts-byC[early.c]), float64(2*time.Millisecond), "before SRs: placed by arrival")
	checked := 0
	for _, v := range video {
		if v.c < 4*time.Second {
			continue
		}
		off := v.pts - byC[v.c]
		require.LessOrEqual(t, off.Abs(), 20*time.Millisecond, "video at %v: offset %v", v.c, off)
		checked++
	}
	require.Greater(t, checked, 100)
	// after convergence the offset is exact
	last := video[len(video)-1]
	require.LessOrEqual(t, (last.pts - byC[last.c]).Abs(), time.Millisecond)
}

// TestLipSyncWithJitter: the same with 30 ms jitter on both streams.
func TestLipSyncWithJitter(t *testing.T) {
	tl, err := New(Config{})
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(3, 4))
	evs := schedule(rng, 10*time.Second,
		sender{ssrc: 1, rate: 8000, every: 20 * time.Millisecond, jitter: 30 * time.Millisecond, srFirst: 0},
		sender{ssrc: 2, rate: 90000, every: 40 * time.Millisecond, delay: 120 * time.Millisecond, jitter: 30 * time.Millisecond, video: true, srFirst: 0},
	)
	audio, video := run(t, tl, evs, map[bool]uint32{false: 8000, true: 90000})
	byC := map[time.Duration]time.Duration{}
	newest := time.Duration(-1)
	for _, a := range audio {
		// Frames reordered by the jitter (there is no jitter buffer
		// here) are placed just after their predecessor, not mapped:
		// compare only frames mapped in order.
		if a.c > newest {
			byC[a.c] = a.pts
			newest = a.c
		}
	}
	for _, v := range video {
		if v.c < 5*time.Second {
			continue
		}
		p, ok := byC[v.c]
		if !ok {
			continue
		}
		require.LessOrEqual(t, (v.pts - p).Abs(), 20*time.Millisecond, "video at %v", v.c)
	}
}

// TestSSRCChangeAndWrap: timestamps wrap, then the SSRC changes after a
// 3 s hold with unrelated timestamps and another clock: the output stays
// monotonic and the hold shows as a gap.
func TestSSRCChangeAndWrap(t *testing.T) {
	tl, err := New(Config{})
	require.NoError(t, err)
	s := tl.NewStream()
	var last time.Duration
	ts := uint32(0xffffff00)
	at := time.Duration(0)
	for i := 0; i < 100; i++ { // wraps after 2 packets
		s.Observe(7, ts, 8000, t0.Add(at))
		p := s.Map(7, ts)
		require.GreaterOrEqual(t, p, last)
		if i > 0 {
			require.Equal(t, 20*time.Millisecond, p-last, "packet %d", i)
		}
		last = p
		ts += 160
		at += 20 * time.Millisecond
	}
	beforeHold := last
	at += 3 * time.Second
	ts = 12345
	for i := 0; i < 50; i++ {
		s.Observe(8, ts, 48000, t0.Add(at))
		p := s.Map(8, ts)
		require.GreaterOrEqual(t, p, last)
		last = p
		if i == 0 {
			require.InDelta(t, float64(beforeHold+3*time.Second+20*time.Millisecond), float64(p), float64(time.Millisecond), "gap shown")
		}
		ts += 960
		at += 20 * time.Millisecond
	}
	require.Equal(t, uint64(2), s.Stats().Segments)
}

// TestPausedTimestamps: a sender that keeps its SSRC and timestamps across
// a 5 s pause starts a new segment (resync), so the pause shows as a gap.
func TestPausedTimestamps(t *testing.T) {
	tl, err := New(Config{})
	require.NoError(t, err)
	s := tl.NewStream()
	ts := uint32(1000)
	at := time.Duration(0)
	var outs []time.Duration
	for i := 0; i < 100; i++ {
		if i == 50 {
			at += 5 * time.Second // timestamps do not advance
		}
		s.Observe(1, ts, 8000, t0.Add(at))
		outs = append(outs, s.Map(1, ts))
		ts += 160
		at += 20 * time.Millisecond
	}
	for i := 1; i < len(outs); i++ {
		require.GreaterOrEqual(t, outs[i], outs[i-1])
	}
	require.Equal(t, uint64(1), s.Stats().Resyncs)
	require.InDelta(t, float64(at-20*time.Millisecond), float64(outs[99]), float64(time.Millisecond))
}

// TestRejectsForeignClock: a video SR whose clock is far from the audio's
// is ignored; video stays on arrival time.
func TestRejectsForeignClock(t *testing.T) {
	tl, err := New(Config{})
	require.NoError(t, err)
	a, v := tl.NewStream(), tl.NewStream()
	a.Observe(1, 0, 8000, t0)
	a.SenderReport(1, ntpAt(0), 0, t0)
	v.Observe(2, 0, 90000, t0)
	v.SenderReport(2, ntpAt(time.Hour), 0, t0)
	require.True(t, a.SenderReportMode())
	require.False(t, v.SenderReportMode())
	require.Equal(t, uint64(1), v.Stats().Rejected)
}

func TestNTPDiff(t *testing.T) {
	require.Equal(t, 1500*time.Millisecond, NTPDiff(ntpAt(2500*time.Millisecond), ntpAt(time.Second)))
	require.Equal(t, -1500*time.Millisecond, NTPDiff(ntpAt(time.Second), ntpAt(2500*time.Millisecond)))
}

func TestConfig(t *testing.T) {
	_, err := New(Config{Slew: 1})
	require.Error(t, err)
	_, err = New(Config{Resync: -1})
	require.Error(t, err)
}

// A call longer than a day: at 90 kHz the extended timestamp passes
// 9.2e9 after about 28.5 hours, where ext*1e9 no longer fits in an int64.
// The mapping must stay on the wall clock, with and without SRs.
func TestLongCall(t *testing.T) {
	for _, withSR := range []bool{false, true} {
		tl, err := New(Config{})
		require.NoError(t, err)
		s := tl.NewStream()
		const rate = 90000
		base := uint32(123456)
		for c := time.Duration(0); c <= 40*time.Hour; c += 500 * time.Millisecond {
			ts := base + uint32(int64(c/time.Millisecond)*rate/1000)
			at := t0.Add(c + 20*time.Millisecond)
			s.Observe(7, ts, rate, at)
			if withSR && c%(5*time.Second) == 0 {
				s.SenderReport(7, ntpAt(c), ts, at)
			}
			got := s.Map(7, ts)
			if d := got - c; d < -50*time.Millisecond || d > 50*time.Millisecond {
				t.Fatalf("SR %v: at %v of media the frame is mapped to %v", withSR, c, got)
			}
		}
		require.Zero(t, s.Stats().Resyncs, "SR %v", withSR)
	}
}
