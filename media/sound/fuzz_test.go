package sound

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/sipstream/sipstream/media"
)

// fuzzOpts keeps fuzzed files small and short.
var fuzzOpts = options{maxDuration: 5 * time.Second, maxBytes: 64 << 10}

// checkDecoded holds every decoder to its contract: a Clip within the
// limits, or an error wrapping one of the package's sentinels.
func checkDecoded(t *testing.T, c *Clip, err error) {
	if err != nil {
		if c != nil {
			t.Fatalf("clip and error %v", err)
		}
		for _, e := range []error{ErrUnsupportedFormat, ErrMalformed, ErrTooLarge, ErrTooLong} {
			if errors.Is(err, e) {
				return
			}
		}
		t.Fatalf("error without sentinel: %v", err)
	}
	if checkFileRate(c.SampleRate) != nil {
		t.Fatalf("rate %d", c.SampleRate)
	}
	if len(c.Samples) > fuzzOpts.maxSamples(c.SampleRate) {
		t.Fatalf("%d samples beyond the limit", len(c.Samples))
	}
	// A decoded clip plays.
	src := c.Play(8000, false)
	buf := make([]int16, 160)
	for range 10 {
		if _, err := src.Read(buf); err != nil {
			break
		}
	}
}

// inTime runs a decoder and fails the test when it takes more than 20
// seconds (a hang the fuzzer would otherwise not report; the margin is for a
// loaded machine: files of at most 64 KiB decode in milliseconds).
func inTime(t *testing.T, fn func() (*Clip, error)) (*Clip, error) {
	type result struct {
		c   *Clip
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := fn()
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		return r.c, r.err
	case <-time.After(20 * time.Second):
		t.Fatal("decoder hangs")
		return nil, nil
	}
}

func seedFiles(f *testing.F, names ...string) {
	for _, n := range names {
		b := readTestdata(f, n)
		f.Add(b)
		f.Add(b[:len(b)/3])
	}
}

// FuzzDecode: the public entry point, with format detection.
func FuzzDecode(f *testing.F) {
	for _, fl := range files {
		seedFiles(f, fl.name)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := inTime(t, func() (*Clip, error) { return decode(bytes.NewReader(b), fuzzOpts) })
		checkDecoded(t, c, err)
	})
}

// FuzzDecodeWAV: the RIFF/WAVE parser.
func FuzzDecodeWAV(f *testing.F) {
	seedFiles(f, "tone1k_44100_stereo_s16.wav", "tone1k_8000_ulaw.wav")
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeWAV(b, fuzzOpts)
		checkDecoded(t, c, err)
	})
}

// FuzzDecodeMP3: go-mp3 and the gapless information parser.
func FuzzDecodeMP3(f *testing.F) {
	seedFiles(f, "tone1k_44100.mp3")
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = mp3Gapless(b)
		c, err := inTime(t, func() (*Clip, error) { return decodeMP3(b, fuzzOpts) })
		checkDecoded(t, c, err)
	})
}

// FuzzDecodeOggOpus: the Ogg page reader, the Opus headers and pion/opus.
// Half the inputs get their page checksums fixed, so that mutations reach
// the packets instead of stopping at the checksum.
func FuzzDecodeOggOpus(f *testing.F) {
	seedFiles(f, "tone1k_48000.opus")
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 0 && b[len(b)-1]&1 == 0 {
			fixOggChecksums(b)
		}
		c, err := inTime(t, func() (*Clip, error) { return decodeOggOpus(b, fuzzOpts) })
		checkDecoded(t, c, err)
	})
}

// FuzzLiveWriteFrame: frames from the network decoded by a Live.
func FuzzLiveWriteFrame(f *testing.F) {
	for _, fr := range opusFrames(f, "tone1k_48000_stereo.opus")[:3] {
		f.Add(uint8(media.CodecOpus), fr.Payload, int64(fr.PTS))
	}
	f.Add(uint8(media.CodecPCMA), bytes.Repeat([]byte{0xd5}, 160), int64(0))
	f.Add(uint8(media.CodecPCMU), []byte{0xff}, int64(-1))
	f.Fuzz(func(t *testing.T, codec uint8, payload []byte, pts int64) {
		l, err := NewLive(16000)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			fr := media.Frame{Codec: media.Codec(codec), Payload: payload, PTS: time.Duration(pts) + time.Duration(i)*20*time.Millisecond}
			if err := l.WriteFrame(&fr); err != nil && !errors.Is(err, ErrCodec) {
				t.Fatalf("error without ErrCodec: %v", err)
			}
		}
		buf := make([]int16, 8000)
		if n, err := l.Read(buf); err != nil || n > l.maxLen {
			t.Fatalf("read %d, %v", n, err)
		}
	})
}

// fixOggChecksums rewrites the checksum of each whole page at the start of
// b.
func fixOggChecksums(b []byte) {
	for len(b) >= oggHeaderLen && string(b[:4]) == "OggS" {
		n := int(b[26])
		if len(b) < oggHeaderLen+n {
			return
		}
		end := oggHeaderLen + n
		for _, l := range b[oggHeaderLen : oggHeaderLen+n] {
			end += int(l)
		}
		if end > len(b) {
			return
		}
		binary.LittleEndian.PutUint32(b[22:26], oggCRC(b[:end]))
		b = b[end:]
	}
}
