package filler

import (
	"testing"
	"time"

	"github.com/sipstream/sipstream/media"
)

// FuzzSequence runs a Filler on a fake clock through a sequence of
// operations decoded from the input (real frames of any codec, timing and
// payload, holds, clock steps, Close) and checks its promises: no panic,
// a filler frame's DTS is after every frame of its kind emitted before,
// a real frame is never emitted at or before a filler frame of its kind,
// and no timer is left after Close.
func FuzzSequence(f *testing.F) {
	f.Add([]byte{0, 1, 3, 1, 2, 4, 0x80, 0x80, 5, 1, 2, 3})
	f.Add([]byte{0x21, 1, 3, 0, 0, 0, 0x48, 0x48, 1, 0x13, 0x23, 0x0b, 0x1b})
	f.Add([]byte{0x12, 0x37, 0x47, 3, 4, 0xf0, 0xf0, 0xf0, 5, 0x0f, 0x0b, 3, 6, 0x2e})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) == 0 || len(ops) > 2000 {
			return
		}
		cfg := Config{Clock: newFakeClock()}
		if ops[0]&1 != 0 {
			cfg.Gap = MinGap + time.Duration(ops[0]>>4)*50*time.Millisecond
		}
		if ops[0]&2 != 0 {
			cfg.StillInterval = time.Duration(1+ops[0]>>2&7) * 100 * time.Millisecond
		}
		if ops[0]&0x40 != 0 {
			cfg.BlackWidth, cfg.BlackHeight = 32, 32
		}
		c := cfg.Clock.(*fakeClock)
		origin := c.Now()
		var f *Filler
		last := map[media.Kind]time.Duration{}
		seen := map[media.Kind]bool{}
		lastFill := map[media.Kind]time.Duration{}
		filled := map[media.Kind]bool{}
		out := func(fr *media.Frame) {
			k := fr.Kind()
			isFill := fr == &f.audio.frame || fr == &f.video.frame
			if isFill && seen[k] && fr.DTS <= last[k] {
				t.Fatalf("filler %v frame at %v not after %v", k, fr.DTS, last[k])
			}
			if !isFill && filled[k] && fr.DTS <= lastFill[k] {
				t.Fatalf("real %v frame at %v not after filler frame at %v", k, fr.DTS, lastFill[k])
			}
			if isFill {
				lastFill[k], filled[k] = fr.DTS, true
				if len(fr.Payload) == 0 || !fr.Keyframe {
					t.Fatalf("filler frame without payload or key flag: %+v", fr)
				}
			}
			last[k], seen[k] = fr.DTS, true
		}
		var err error
		f, err = New(cfg, out)
		if err != nil {
			t.Fatal(err)
		}
		codecs := []media.Codec{media.CodecPCMA, media.CodecPCMU, media.CodecOpus, media.CodecSpeex,
			media.CodecH264, media.CodecVP8, media.CodecAAC, media.CodecUnknown}
		for i := 1; i < len(ops); i++ {
			b := ops[i]
			arg := time.Duration(b >> 3)
			now := c.Now().Sub(origin)
			switch b & 7 {
			case 0: // time passes
				c.Advance(arg * 17 * time.Millisecond)
			case 1, 2, 3: // a real frame near the wall clock, maybe late or early
				codec := codecs[int(arg)%len(codecs)]
				dts := now + (arg-16)*7*time.Millisecond
				fr := &media.Frame{Codec: codec, PTS: dts, DTS: dts, Keyframe: b&7 != 2,
					Payload: make([]byte, int(arg)*3), ClockRate: 8000, Channels: uint8(arg % 3),
					Duration: (arg - 4) * 5 * time.Millisecond}
				if codec == media.CodecOpus {
					fr.ClockRate = 48000
				}
				f.WriteFrame(fr)
			case 4:
				f.Hold(true)
			case 5:
				f.Hold(false)
			case 6:
				if arg == 31 {
					f.Close()
				}
				_ = f.Stats()
			case 7:
				c.Advance(arg * time.Millisecond)
			}
		}
		f.Close()
		if n := c.Pending(); n != 0 {
			t.Fatalf("%d timers left after Close", n)
		}
	})
}
