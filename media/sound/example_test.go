package sound_test

import (
	"fmt"
	"io"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/sound"
)

// Load a sound file (the format comes from its content) and play it at a
// call's 8 kHz audio clock, 20 ms at a time, as a media session's sender
// does.
func ExampleLoad() {
	clip, err := sound.Load("testdata/tone1k_48000.opus")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(clip.Format, clip.SampleRate, clip.Duration())

	src := clip.Play(8000, false) // true: loop until replaced
	buf := make([]int16, 160)     // 20 ms at 8 kHz
	total := 0
	for {
		n, err := src.Read(buf)
		total += n
		if err == io.EOF {
			break
		}
	}
	fmt.Println(total, "samples at 8 kHz")
	// Output:
	// ogg-opus 48000 1s
	// 8000 samples at 8 kHz
}

// Feed one call's audio frames into a Live and read them on another
// call's clock: nothing comes out until 40 ms are buffered (a little more
// here: the 8 to 16 kHz resampler holds back a millisecond).
func ExampleLive() {
	live, err := sound.NewLive(16000)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer live.Close()
	buf := make([]int16, 320) // 20 ms at 16 kHz
	for i := range 4 {
		// In a call, frames come from the other call's session (its
		// Config.OnFrame, on that session's goroutine).
		f := media.Frame{
			Codec: media.CodecPCMU, ClockRate: 8000,
			PTS:     time.Duration(i) * 20 * time.Millisecond,
			Payload: g711.EncodeULaw(nil, make([]int16, 160)),
		}
		if err := live.WriteFrame(&f); err != nil {
			fmt.Println(err)
		}
		n, _ := live.Read(buf)
		fmt.Println("read", n)
	}
	// Output:
	// read 0
	// read 0
	// read 320
	// read 320
}

// Mix a looped sound with another source at a different rate: the mix
// runs at the first source's rate.
func ExampleMix() {
	beep := &sound.Clip{SampleRate: 8000, Samples: make([]int16, 800)}
	music := &sound.Clip{SampleRate: 44100, Samples: make([]int16, 44100)}
	mix, err := sound.Mix(beep.Play(0, true), music.Play(0, false))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(mix.SampleRate())
	// Output: 8000
}
