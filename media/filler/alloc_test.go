package filler

import (
	"testing"
	"time"

	"github.com/sipstream/sipstream/media"
)

// TestAllocations: passing real frames through, keeping a keyframe of a
// size seen before, and emitting silence and stills allocate nothing.
func TestAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	c := newFakeClock()
	origin := c.Now()
	var n int
	f, err := New(Config{Clock: c, Gap: time.Second}, func(*media.Frame) { n++ })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src := &source{}
	key := src.video(0, true)
	audio := src.audio(0)
	f.WriteFrame(key)
	f.WriteFrame(audio)
	dts := time.Duration(0)
	if a := testing.AllocsPerRun(200, func() {
		dts += 20 * time.Millisecond
		c.mu.Lock()
		c.now = origin.Add(dts)
		c.mu.Unlock()
		audio.DTS, audio.PTS = dts, dts
		key.DTS, key.PTS = dts, dts
		f.WriteFrame(audio)
		f.WriteFrame(key)
	}); a != 0 {
		t.Errorf("WriteFrame: %v allocations", a)
	}
	f.Hold(true)
	if a := testing.AllocsPerRun(200, func() {
		dts += 20 * time.Millisecond
		f.mu.Lock()
		f.fillAudioLocked(dts)
		f.fillVideoLocked(dts)
		f.mu.Unlock()
	}); a != 0 {
		t.Errorf("filling: %v allocations", a)
	}
	if f.Stats().AudioFrames < 150 || f.Stats().VideoFrames < 5 {
		t.Errorf("filled too little: %+v", f.Stats())
	}
}
