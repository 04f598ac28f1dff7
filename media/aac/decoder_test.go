package aac

import (
	"fmt"
	"testing"
)

// decodeAll decodes access units to interleaved int16 PCM.
func decodeAll(rate, nch int, aus [][]byte) ([]int16, error) {
	d, err := NewDecoder(rate, nch)
	if err != nil {
		return nil, err
	}
	var out []int16
	for i, au := range aus {
		if out, err = d.Decode(out, au); err != nil {
			return nil, fmt.Errorf("access unit %d: %w", i, err)
		}
	}
	return out, nil
}

// FuzzDecoder feeds arbitrary access units to the subset decoder: errors
// are fine, panics and runaway reads are not.
func FuzzDecoder(f *testing.F) {
	e, _ := NewEncoder(EncoderConfig{SampleRate: 16000, Channels: 2})
	aus, _ := e.Encode(make([]int16, 4096))
	more, _ := e.Flush()
	for _, au := range append(aus, more...) {
		f.Add(au, true)
	}
	e1, _ := NewEncoder(EncoderConfig{SampleRate: 16000})
	pcm := musicLike(16000, 4096)
	aus, _ = e1.Encode(pcm)
	for _, au := range aus {
		f.Add(au, false)
	}
	e2, _ := NewEncoder(EncoderConfig{SampleRate: 16000})
	clicks, _ := castanets(16000, 16000, 0.1)
	aus, _ = e2.Encode(clicks) // includes LONG_START, EIGHT_SHORT, LONG_STOP frames
	for _, au := range aus {
		f.Add(au, false)
	}
	f.Add([]byte{0xE0}, false)
	f.Fuzz(func(t *testing.T, au []byte, stereo bool) {
		nch := 1
		if stereo {
			nch = 2
		}
		d, _ := NewDecoder(16000, nch)
		out, err := d.Decode(nil, au)
		if err == nil && len(out) != FrameSamples*nch {
			t.Fatalf("%d samples", len(out))
		}
	})
}
