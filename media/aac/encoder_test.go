package aac

import (
	"errors"
	"math"
	"testing"

	"github.com/sipstream/sipstream/internal/testmedia"
)

func encodeAll(t testing.TB, cfg EncoderConfig, pcm []int16, block int) [][]byte {
	t.Helper()
	e, err := NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var aus [][]byte
	for i := 0; i < len(pcm); {
		n := min(block, len(pcm)-i)
		a, err := e.Encode(pcm[i : i+n])
		if err != nil {
			t.Fatal(err)
		}
		aus = append(aus, a...)
		i += n
	}
	a, err := e.Flush()
	if err != nil {
		t.Fatal(err)
	}
	return append(aus, a...)
}

func TestConfig(t *testing.T) {
	for _, c := range []EncoderConfig{
		{SampleRate: 0},
		{SampleRate: 44000},
		{SampleRate: 48000, Channels: 3},
		{SampleRate: 8000, Bitrate: 1000},
		{SampleRate: 8000, Bitrate: 100000},
	} {
		if _, err := NewEncoder(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", c, err)
		}
	}
}

// Golden AudioSpecificConfig values (§1.6.2.1): object type 2, frequency
// index, channel configuration.
func TestAudioSpecificConfig(t *testing.T) {
	for _, c := range []struct {
		rate, ch int
		want     [2]byte
	}{
		{48000, 1, [2]byte{0x11, 0x88}},
		{48000, 2, [2]byte{0x11, 0x90}},
		{44100, 2, [2]byte{0x12, 0x10}},
		{8000, 1, [2]byte{0x15, 0x88}},
		{16000, 1, [2]byte{0x14, 0x08}},
	} {
		e, err := NewEncoder(EncoderConfig{SampleRate: c.rate, Channels: c.ch})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.AudioSpecificConfig(); got[0] != c.want[0] || got[1] != c.want[1] {
			t.Errorf("%d Hz %d ch: % x, want % x", c.rate, c.ch, got, c.want)
		}
	}
}

// Every rate and channel count the encoder takes gets the two bytes of the
// bit layout written out by hand: audioObjectType 2 (5 bits),
// samplingFrequencyIndex (4), channelConfiguration (4), GASpecificConfig 0.
func TestAudioSpecificConfigAllRates(t *testing.T) {
	for idx, r := range sampleRates {
		for ch := 1; ch <= 2; ch++ {
			e, err := NewEncoder(EncoderConfig{SampleRate: r.rate, Channels: ch})
			if err != nil {
				t.Fatal(err)
			}
			v := uint16(2)<<11 | uint16(idx)<<7 | uint16(ch)<<3
			if got := e.AudioSpecificConfig(); len(got) != 2 || got[0] != byte(v>>8) || got[1] != byte(v) {
				t.Errorf("%d Hz %d ch: % x, want %04x", r.rate, ch, got, v)
			}
		}
	}
}

func TestADTSRoundTrip(t *testing.T) {
	au := []byte{1, 2, 3}
	b := AppendADTS(nil, 3, 2, au)
	h, err := ParseADTS(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.SampleRateIndex != 3 || h.Channels != 2 || h.ObjectType != 2 || h.FrameLength != 10 || h.HeaderLength != 7 {
		t.Fatalf("%+v", h)
	}
	if _, err := ParseADTS([]byte{0xFF, 0xF1, 0, 0, 0, 0}); !errors.Is(err, ErrADTS) {
		t.Fatal("short header accepted")
	}
}

// Every sample rate and both channel counts: the stream parses exactly and
// a tone comes back at its frequency with good SNR.
func TestToneAllRates(t *testing.T) {
	for _, rate := range []int{8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000} {
		for _, nch := range []int{1, 2} {
			mono := testmedia.Tone(1000, rate, 0, rate, 0.5)
			pcm := mono
			if nch == 2 {
				pcm = make([]int16, 0, 2*len(mono))
				for i, v := range mono {
					pcm = append(pcm, v, mono[len(mono)-1-i]/2) // different right channel
				}
			}
			cfg := EncoderConfig{SampleRate: rate, Channels: nch, Bitrate: min(64000*nch, 6144*nch*rate/1024)}
			aus := encodeAll(t, cfg, pcm, 333*nch)
			wantAUs := (len(mono)+FrameSamples-1)/FrameSamples + 1
			if len(aus) != wantAUs {
				t.Fatalf("%d Hz: %d access units, want %d", rate, len(aus), wantAUs)
			}
			dec, err := decodeAll(rate, nch, aus)
			if err != nil {
				t.Fatalf("%d Hz %d ch: %v", rate, nch, err)
			}
			left := make([]int16, 0, len(dec)/nch)
			for i := 0; i < len(dec); i += nch {
				left = append(left, dec[i])
			}
			left = left[FrameSamples:] // encoder delay
			if g := testmedia.Goertzel(left[rate/4:rate*3/4], rate, 1000); g < 0.98 {
				t.Errorf("%d Hz %d ch: Goertzel %.3f", rate, nch, g)
			}
			if s := snrDB(mono, left, 0, rate/10); s < 30 {
				t.Errorf("%d Hz %d ch: SNR %.1f dB", rate, nch, s)
			}
		}
	}
}

// The rate control holds the target bitrate on a demanding signal.
func TestBitrate(t *testing.T) {
	const rate = 48000
	pcm := musicLike(rate, rate*4)
	for i := range pcm { // add noise so every frame is hard
		pcm[i] += int16((i*7919)%2001 - 1000)
	}
	for _, br := range []int{32000, 64000, 128000} {
		aus := encodeAll(t, EncoderConfig{SampleRate: rate, Bitrate: br}, pcm, 960)
		total := 0
		for _, au := range aus {
			total += len(au)
		}
		got := float64(total*8) / (float64(len(aus)*FrameSamples) / rate)
		t.Logf("target %d bit/s: %.0f bit/s", br, got)
		if got > float64(br)*1.02 || got < float64(br)*0.85 {
			t.Errorf("target %d bit/s: got %.0f", br, got)
		}
	}
}

// Quality on the speech-like and music-like signals at 64 kbit/s mono,
// decoded by the strict test decoder (the interop test does the same with
// ffmpeg and compares with ffmpeg's encoder).
func TestQuality(t *testing.T) {
	const rate = 48000
	for _, sig := range []struct {
		name string
		pcm  []int16
		min  float64
	}{
		{"speech", speechLike(rate, rate*3), 20},
		{"music", musicLike(rate, rate*3), 40},
	} {
		aus := encodeAll(t, EncoderConfig{SampleRate: rate, Bitrate: 64000}, sig.pcm, 1000)
		dec, err := decodeAll(rate, 1, aus)
		if err != nil {
			t.Fatal(err)
		}
		s := snrDB(sig.pcm, dec, FrameSamples, 2048)
		t.Logf("%s: SNR %.2f dB, segSNR %.2f dB", sig.name, s, segSNR(sig.pcm, dec, FrameSamples, 1024))
		if s < sig.min {
			t.Errorf("%s: SNR %.2f dB < %.0f", sig.name, s, sig.min)
		}
	}
}

// Hostile input: silence, full-scale square waves, full-scale noise,
// alternating extremes. The stream must parse and never hold NaN.
func TestHostileInput(t *testing.T) {
	const rate = 48000
	n := rate
	sigs := map[string][]int16{
		"silence": make([]int16, n),
		"square":  make([]int16, n),
		"nyquist": make([]int16, n),
		"dc":      make([]int16, n),
		"impulse": make([]int16, n),
	}
	for i := 0; i < n; i++ {
		if (i/24)%2 == 0 {
			sigs["square"][i] = 32767
		} else {
			sigs["square"][i] = -32768
		}
		if i%2 == 0 {
			sigs["nyquist"][i] = 32767
		} else {
			sigs["nyquist"][i] = -32768
		}
		sigs["dc"][i] = -32768
	}
	sigs["impulse"][5000] = 32767
	for name, pcm := range sigs {
		for _, nch := range []int{1, 2} {
			in := pcm
			if nch == 2 {
				in = make([]int16, 0, 2*n)
				for _, v := range pcm {
					in = append(in, v, ^v)
				}
			}
			for _, br := range []int{8000, 64000 * nch, 6144 * nch * rate / 1024} {
				aus := encodeAll(t, EncoderConfig{SampleRate: rate, Channels: nch, Bitrate: br}, in, 4096)
				for i, au := range aus {
					if len(au) > 6144/8*nch {
						t.Fatalf("%s: access unit %d has %d bytes", name, i, len(au))
					}
				}
				dec, err := decodeAll(rate, nch, aus)
				if err != nil {
					t.Fatalf("%s %d ch %d bit/s: %v", name, nch, br, err)
				}
				if name == "silence" && nch == 1 {
					for _, v := range dec {
						if v != 0 {
							t.Fatalf("silence decodes to %d", v)
						}
					}
				}
				if name == "square" && br >= 64000*nch {
					if s := snrDB(in, dec, FrameSamples*nch, 4096); s < 10 {
						t.Errorf("square %d ch %d bit/s: SNR %.1f dB", nch, br, s)
					}
				}
			}
		}
	}
}

func TestOddBlockSizesGiveSameStream(t *testing.T) {
	pcm := musicLike(16000, 16000)
	ref := encodeAll(t, EncoderConfig{SampleRate: 16000, Channels: 2, Bitrate: 48000}, pcm, len(pcm))
	for _, block := range []int{1, 3, 1023, 2049} {
		got := encodeAll(t, EncoderConfig{SampleRate: 16000, Channels: 2, Bitrate: 48000}, pcm, block)
		if len(got) != len(ref) {
			t.Fatalf("block %d: %d AUs, want %d", block, len(got), len(ref))
		}
		for i := range got {
			if string(got[i]) != string(ref[i]) {
				t.Fatalf("block %d: AU %d differs", block, i)
			}
		}
	}
}

func TestFlushRestartsStream(t *testing.T) {
	e, _ := NewEncoder(EncoderConfig{SampleRate: 8000})
	if aus, _ := e.Flush(); len(aus) != 0 {
		t.Fatalf("flush of nothing gave %d AUs", len(aus))
	}
	aus, _ := e.Encode(testmedia.Tone(440, 8000, 0, 100, 0.5))
	if len(aus) != 0 {
		t.Fatal("AU before a full frame")
	}
	aus, _ = e.Flush()
	if len(aus) != 2 {
		t.Fatalf("flush gave %d AUs, want 2", len(aus))
	}
	if _, err := decodeAll(8000, 1, aus); err != nil {
		t.Fatal(err)
	}
	if e.Delay() != 128*1e6 {
		t.Fatalf("delay %v", e.Delay())
	}
}

// FuzzEncode drives the encoder with arbitrary PCM, channel count, bitrate
// and block sizes; every access unit must parse exactly and decode without
// NaN.
func FuzzEncode(f *testing.F) {
	f.Add([]byte{0x00, 0x80, 0xff, 0x7f}, uint8(1), uint16(64), uint16(7))
	f.Add(make([]byte, 5000), uint8(2), uint16(8), uint16(1))
	sq := make([]byte, 8192)
	for i := range sq {
		if (i/64)%2 == 0 {
			sq[i] = 0x7f
		} else {
			sq[i] = 0x80
		}
	}
	f.Add(sq, uint8(2), uint16(500), uint16(1000))
	f.Fuzz(func(t *testing.T, data []byte, nch uint8, kbps uint16, block uint16) {
		ch := int(nch%2) + 1
		rate := 16000
		cfg := EncoderConfig{SampleRate: rate, Channels: ch, Bitrate: int(kbps) * 1000}
		e, err := NewEncoder(cfg)
		if err != nil {
			return
		}
		pcm := make([]int16, len(data)/2)
		for i := range pcm {
			pcm[i] = int16(uint16(data[2*i]) | uint16(data[2*i+1])<<8)
		}
		// Repeat the input so several frames are coded.
		for len(pcm) > 0 && len(pcm) < 4*FrameSamples*ch {
			pcm = append(pcm, pcm...)
		}
		bs := int(block%4096) + 1
		var aus [][]byte
		for i := 0; i < len(pcm); i += bs {
			a, err := e.Encode(pcm[i:min(i+bs, len(pcm))])
			if err != nil {
				t.Fatal(err)
			}
			aus = append(aus, a...)
		}
		a, _ := e.Flush()
		aus = append(aus, a...)
		if len(pcm) >= ch && len(aus) < (len(pcm)/ch)/FrameSamples+1 {
			t.Fatalf("%d samples gave %d AUs", len(pcm), len(aus))
		}
		dec, err := decodeAll(rate, ch, aus)
		if err != nil {
			t.Fatal(err)
		}
		_ = dec
		for _, au := range aus {
			if len(au) > 768*ch {
				t.Fatalf("AU of %d bytes", len(au))
			}
		}
		_ = math.NaN
	})
}

// Mid/side: a duplicated mono source costs about one channel, so at the same
// total bitrate the stereo pair gets close to the mono quality; a pair that
// is correlated only in part uses per-band flags. Both decode exactly.
func TestMidSide(t *testing.T) {
	const rate = 48000
	mono := speechLike(rate, rate*2)
	dup := make([]int16, 0, 2*len(mono))
	for _, v := range mono {
		dup = append(dup, v, v)
	}
	aus := encodeAll(t, EncoderConfig{SampleRate: rate, Channels: 2, Bitrate: 64000}, dup, 1920)
	dec, err := decodeAll(rate, 2, aus)
	if err != nil {
		t.Fatal(err)
	}
	sStereo := snrDB(dup, dec, 2*FrameSamples, 4096)
	monoAUs := encodeAll(t, EncoderConfig{SampleRate: rate, Channels: 1, Bitrate: 64000}, mono, 960)
	monoDec, _ := decodeAll(rate, 1, monoAUs)
	sMono := snrDB(mono, monoDec, FrameSamples, 2048)
	t.Logf("duplicated mono at 64 kbit/s stereo: SNR %.2f dB; mono at 64 kbit/s: %.2f dB", sStereo, sMono)
	if sStereo < sMono-3 {
		t.Errorf("stereo SNR %.2f dB too far below mono %.2f dB: M/S not effective", sStereo, sMono)
	}
	// Partly correlated: right = left plus high-frequency noise.
	part := make([]int16, 0, 2*len(mono))
	for i, v := range mono {
		n := int16(((i * 7919) % 4001) - 2000)
		if i%2 == 0 {
			n = -n
		}
		part = append(part, v, v/2+n)
	}
	e, _ := NewEncoder(EncoderConfig{SampleRate: rate, Channels: 2, Bitrate: 128000})
	masks := map[int]int{}
	var aus2 [][]byte
	for i := 0; i < len(part); i += 2048 {
		a, _ := e.Encode(part[i:min(i+2048, len(part))])
		for range a {
			masks[e.msMask(e.ch[0].maxSfb)]++
		}
		aus2 = append(aus2, a...)
	}
	if _, err := decodeAll(rate, 2, aus2); err != nil {
		t.Fatal(err)
	}
	t.Logf("ms_mask_present histogram %v", masks)
	if masks[1] == 0 {
		t.Errorf("per-band M/S never used: %v", masks)
	}
}

// Short windows around attacks: the encoder switches to EIGHT_SHORT for
// the castanet bursts, the stream decodes exactly, and the noise in the
// 20 ms before each attack (pre-echo) is far lower than with long blocks
// only.
func TestShortBlocksAgainstPreEcho(t *testing.T) {
	const rate = 48000
	pcm, onsets := castanets(rate, rate*3, 0.2512)
	preEcho := func(longOnly bool) (float64, map[int]int) {
		e, err := NewEncoder(EncoderConfig{SampleRate: rate, Bitrate: 64000, LongOnly: longOnly})
		if err != nil {
			t.Fatal(err)
		}
		seqs := map[int]int{}
		var aus [][]byte
		for i := 0; i < len(pcm); i += FrameSamples {
			a, _ := e.Encode(pcm[i:min(i+FrameSamples, len(pcm))])
			for range a {
				seqs[e.seq]++
			}
			aus = append(aus, a...)
		}
		a, _ := e.Flush()
		aus = append(aus, a...)
		dec, err := decodeAll(rate, 1, aus)
		if err != nil {
			t.Fatal(err)
		}
		var noise float64
		for _, o := range onsets {
			for i := o - rate/50; i < o-rate/1000; i++ {
				d := float64(dec[i+FrameSamples]) - float64(pcm[i])
				noise += d * d
			}
		}
		return 10 * math.Log10(noise/float64(len(onsets))/float64(rate/50)+1e-9), seqs
	}
	long, seqLong := preEcho(true)
	short, seqShort := preEcho(false)
	t.Logf("pre-echo power: long only %.1f dB, with short blocks %.1f dB; sequences long-only %v, switching %v", long, short, seqLong, seqShort)
	if seqShort[eightShort] == 0 || seqShort[longStart] == 0 || seqShort[longStop] == 0 {
		t.Fatalf("no window switching: %v", seqShort)
	}
	if seqLong[eightShort] != 0 {
		t.Fatalf("LongOnly used short windows: %v", seqLong)
	}
	if short > long-10 {
		t.Errorf("short blocks reduce pre-echo by only %.1f dB", long-short)
	}
}
