package sound

import (
	"errors"
	"io"
	"math"
)

// Mix returns a Source that sums sources sample by sample, saturating at
// the 16-bit limits, at the first source's rate (the others are
// resampled to it). It ends when every source has ended. A source that
// returns fewer samples than asked (a live source with a gap) adds
// silence for the rest; a read returns as many samples as the most any
// source gave, so a Mix of live sources that all have nothing returns 0
// like they do. A source that fails is dropped from the mix and its error
// returned once, with the samples of that read. Nil sources are skipped;
// with none left Mix returns an error.
func Mix(sources ...Source) (Source, error) {
	m := &mixer{}
	for _, s := range sources {
		if s == nil {
			continue
		}
		if len(m.srcs) > 0 {
			r, err := Resample(s, m.rate)
			if err != nil {
				return nil, err
			}
			s = r
		} else {
			m.rate = s.SampleRate()
		}
		m.srcs = append(m.srcs, s)
	}
	if len(m.srcs) == 0 {
		return nil, errors.New("sound: Mix of no source")
	}
	return m, nil
}

type mixer struct {
	rate int
	srcs []Source // the sources still playing
	acc  []int32
	tmp  []int16
}

func (m *mixer) SampleRate() int { return m.rate }

func (m *mixer) Read(p []int16) (int, error) {
	if len(m.srcs) == 0 {
		return 0, io.EOF
	}
	if cap(m.acc) < len(p) {
		m.acc = make([]int32, len(p))
		m.tmp = make([]int16, len(p))
	}
	acc := m.acc[:len(p)]
	clear(acc)
	tmp := m.tmp[:len(p)]
	most := 0
	var failed error
	live := m.srcs[:0]
	for _, s := range m.srcs {
		n, err := s.Read(tmp)
		for i, v := range tmp[:n] {
			acc[i] += int32(v)
		}
		most = max(most, n)
		switch {
		case err == nil:
			live = append(live, s)
		case errors.Is(err, io.EOF):
		default:
			failed = err
		}
	}
	clear(m.srcs[len(live):]) // let go of the ended ones
	m.srcs = live
	for i, v := range acc[:most] {
		p[i] = int16(max(min(v, math.MaxInt16), math.MinInt16))
	}
	if failed != nil {
		return most, failed
	}
	if len(m.srcs) == 0 {
		return most, io.EOF
	}
	return most, nil
}
