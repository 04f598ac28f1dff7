package filler

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConcurrentRealClock drives a Filler on the real clock from three
// goroutines at once: real media with stalls (Gap), Hold toggled at
// random moments, Stats read; then Close while it fills. Under -race it
// proves the locking; in any mode the output's DTS strictly increase per
// kind and no goroutine is left (goleak in TestMain).
func TestConcurrentRealClock(t *testing.T) {
	r := newRecorder()
	f := r.newFiller(t, Config{StillInterval: 30 * time.Millisecond, Gap: MinGap})
	src := &source{keyEvery: 10}
	start := time.Now()
	deadline := start.Add(700 * time.Millisecond)

	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // the phone: 5 ms steps, a stall of 150 ms every 200 ms
		defer wg.Done()
		for i := 0; time.Now().Before(deadline); i++ {
			e := time.Since(start)
			if e%(200*time.Millisecond) < 150*time.Millisecond || i%2 == 0 {
				f.WriteFrame(src.audio(e))
				f.WriteFrame(src.video(e+time.Microsecond, i%10 == 0))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	go func() { // the call's owner: hold and unhold
		defer wg.Done()
		for on := true; time.Now().Before(deadline); on = !on {
			f.Hold(on)
			time.Sleep(37 * time.Millisecond)
		}
	}()
	go func() { // metrics
		defer wg.Done()
		for time.Now().Before(deadline) {
			_ = f.Stats()
			time.Sleep(3 * time.Millisecond)
		}
	}()
	wg.Wait()
	f.Hold(true)
	time.Sleep(50 * time.Millisecond)
	f.Close()
	n := len(r.snapshot())
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, n, len(r.snapshot()), "nothing filled after Close")
	// Real frames still pass after Close (same dropping rules).
	f.WriteFrame(src.audio(time.Since(start) + time.Second))
	assert.Equal(t, n+1, len(r.snapshot()))

	fs := r.snapshot()
	checkMonotonic(t, fs)
	st := f.Stats()
	t.Logf("%d frames out, stats %+v", len(fs), st)
	require.Positive(t, st.AudioFrames)
	require.Positive(t, st.VideoFrames)
	assert.Positive(t, st.Holds)
	assert.False(t, st.Holding)
	var fillerFrames uint64
	for _, fr := range fs {
		if fr.filler {
			fillerFrames++
		}
	}
	assert.Equal(t, st.AudioFrames+st.VideoFrames, fillerFrames)
}
