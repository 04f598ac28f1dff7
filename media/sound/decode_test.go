package sound

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
)

// The files under testdata were made once with ffmpeg 5 (lavfi sine:
// 1 kHz at amplitude 1/8 of full scale):
//
//	ffmpeg -f lavfi -i sine=frequency=1000:sample_rate=44100:duration=0.1 -ac 2 -c:a pcm_s16le tone1k_44100_stereo_s16.wav
//	ffmpeg -f lavfi -i sine=frequency=1000:sample_rate=8000:duration=1 -c:a pcm_alaw tone1k_8000_alaw.wav
//	ffmpeg -f lavfi -i sine=frequency=1000:sample_rate=8000:duration=0.5 -c:a pcm_mulaw tone1k_8000_ulaw.wav
//	ffmpeg -f lavfi -i sine=frequency=1000:sample_rate=22050:duration=0.5 -c:a pcm_u8 tone1k_22050_u8.wav
//	ffmpeg -f lavfi -i sine=frequency=1000:sample_rate=44100:duration=1 -ac 2 -c:a libmp3lame -b:a 32k -write_id3v1 1 tone1k_44100.mp3
//	ffmpeg -f lavfi -i sine=frequency=1000:sample_rate=48000:duration=1 -c:a libopus -b:a 32k tone1k_48000.opus
//	ffmpeg -f lavfi -i sine=frequency=1000:sample_rate=48000:duration=0.5 -ac 2 -c:a libopus -b:a 48k tone1k_48000_stereo.opus
//
// ffmpeg's mono-to-stereo upmix lowers the stereo files by 3 dB.
var files = []struct {
	name   string
	format Format
	rate   int
	dur    time.Duration
	peak   float64 // expected peak level, fraction of full scale
}{
	{"tone1k_44100_stereo_s16.wav", FormatWAV, 44100, 100 * time.Millisecond, 0.125 / math.Sqrt2},
	{"tone1k_8000_alaw.wav", FormatWAV, 8000, time.Second, 0.125},
	{"tone1k_8000_ulaw.wav", FormatWAV, 8000, 500 * time.Millisecond, 0.125},
	{"tone1k_22050_u8.wav", FormatWAV, 22050, 500 * time.Millisecond, 0.125},
	{"tone1k_44100.mp3", FormatMP3, 44100, time.Second, 0.125 / math.Sqrt2},
	{"tone1k_48000.opus", FormatOggOpus, 48000, time.Second, 0.125},
	{"tone1k_48000_stereo.opus", FormatOggOpus, 48000, 500 * time.Millisecond, 0.125 / math.Sqrt2},
}

func readTestdata(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// TestDecodeFiles decodes each file, checks format, rate and duration
// (exact: pre-skip, end trimming and gapless information honoured), and
// finds the 1 kHz tone with Goertzel at the expected level from the
// first 10 ms to the last.
func TestDecodeFiles(t *testing.T) {
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			c, err := Load(filepath.Join("testdata", f.name))
			require.NoError(t, err)
			require.Equal(t, f.format, c.Format)
			require.Equal(t, f.rate, c.SampleRate)
			require.Equal(t, f.dur, c.Duration(), "%d samples", len(c.Samples))
			require.Len(t, c.Samples, int(int64(f.dur)*int64(f.rate)/int64(time.Second)))
			block := f.rate / 100 // 10 ms
			for _, at := range []int{0, len(c.Samples)/2 - block/2, len(c.Samples) - block} {
				s := c.Samples[at : at+block]
				require.Greater(t, testmedia.Goertzel(s, f.rate, 1000), 0.9, "tone at sample %d", at)
				require.Less(t, testmedia.Goertzel(s, f.rate, 1700), 0.05)
				require.InDelta(t, f.peak*math.Sqrt(0.5), rms(s)/32768, f.peak*0.12, "level at sample %d", at)
			}
		})
	}
}

func rms(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(s)))
}

// TestDetectByContent: the format comes from the bytes, not the name.
func TestDetectByContent(t *testing.T) {
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, f.name+".mp3.wav")
		require.NoError(t, os.WriteFile(p, readTestdata(t, f.name), 0o600))
		c, err := Load(p)
		require.NoError(t, err)
		require.Equal(t, f.format, c.Format)
		require.Equal(t, f.format, Detect(readTestdata(t, f.name)[:64]))
	}
}

func TestDecodeErrors(t *testing.T) {
	wav := readTestdata(t, "tone1k_8000_alaw.wav")
	opus := readTestdata(t, "tone1k_48000.opus")
	mp3 := readTestdata(t, "tone1k_44100.mp3")
	ogg := append([]byte(nil), opus...)
	copy(ogg[28:], "\x01vorbis") // the first packet is not OpusHead
	badFmt := append([]byte(nil), wav...)
	badFmt[20] = 0x55 // format tag 0x0055: MP3 in WAV
	oddRate := append([]byte(nil), wav...)
	copy(oddRate[24:28], le32(383998)) // costly to resample: refused
	flipped := append([]byte(nil), opus...)
	flipped[len(flipped)/2] ^= 0xff // breaks a page checksum
	cases := []struct {
		name string
		in   []byte
		opts []Option
		want error
	}{
		{"empty", nil, nil, ErrUnsupportedFormat},
		{"text", []byte("hello, this is not a sound file at all"), nil, ErrUnsupportedFormat},
		{"vorbis", ogg, nil, ErrUnsupportedFormat},
		{"wav tag 0x55", badFmt, nil, ErrUnsupportedFormat},
		{"wav without data", wav[:40], nil, ErrMalformed},
		{"wav at 383998 Hz", oddRate, nil, ErrRate},
		{"wav without fmt", []byte("RIFF\x04\x00\x00\x00WAVE"), nil, ErrMalformed},
		{"ogg truncated", opus[:len(opus)-100], nil, ErrMalformed},
		{"ogg checksum", flipped, nil, ErrMalformed},
		{"mp3 header only", mp3[:60], nil, ErrMalformed},
		{"wav too large", wav, []Option{WithMaxBytes(1000)}, ErrTooLarge},
		{"wav too long", wav, []Option{WithMaxDuration(500 * time.Millisecond)}, ErrTooLong},
		{"mp3 too long", mp3, []Option{WithMaxDuration(500 * time.Millisecond)}, ErrTooLong},
		{"opus too long", opus, []Option{WithMaxDuration(500 * time.Millisecond)}, ErrTooLong},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(c.in), c.opts...)
			require.ErrorIs(t, err, c.want)
		})
	}
	// go-mp3 would allocate what an ID3v2 size claims (4 GiB when it is
	// not syncsafe): such a tag is refused before go-mp3 sees it.
	bogus := append([]byte("ID3\x04\x00\x00\xf0\x00\x00\x23"), mp3[10:]...)
	_, err := decodeMP3(bogus, newOptions(nil))
	require.ErrorIs(t, err, ErrMalformed)
	_, err = decodeMP3(mp3[:30], newOptions(nil))
	require.ErrorIs(t, err, ErrMalformed, "tag longer than the file")
	// A WAV cut short in its data chunk is what it holds.
	c, err := Decode(bytes.NewReader(wav[:len(wav)-4000]))
	require.NoError(t, err)
	require.Equal(t, 8000-4000, len(c.Samples))
	// Load: a missing file, a file over the byte limit (refused before
	// reading it).
	_, err = Load(filepath.Join(t.TempDir(), "none.wav"))
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = Load(filepath.Join("testdata", "tone1k_8000_alaw.wav"), WithMaxBytes(100))
	require.ErrorIs(t, err, ErrTooLarge)
}

// TestWAVEncodings covers the sample encodings ffmpeg did not make for
// testdata: 24 and 32-bit PCM, 32 and 64-bit float, and
// WAVE_FORMAT_EXTENSIBLE, each with a quarter-scale DC value, odd-sized
// chunks before the data and a data size past the end of the file.
func TestWAVEncodings(t *testing.T) {
	const v = 0.25
	cases := []struct {
		tag    uint16
		bits   int
		sample []byte
	}{
		{wavPCM, 24, []byte{0, 0, 0x20}},
		{wavPCM, 32, []byte{0, 0, 0, 0x20}},
		{wavFloat, 32, le32(math.Float32bits(v))},
		{wavFloat, 64, le64(math.Float64bits(v))},
		{wavExtensible, 16, []byte{0, 0x20}},
	}
	for _, c := range cases {
		var fmtChunk []byte
		sub := c.tag
		if c.tag == wavExtensible {
			sub = wavPCM
		}
		ch := 2
		fmtChunk = append(fmtChunk, le16(c.tag)...)
		fmtChunk = append(fmtChunk, le16(uint16(ch))...)
		fmtChunk = append(fmtChunk, le32(16000)...)
		fmtChunk = append(fmtChunk, le32(uint32(16000*ch*c.bits/8))...)
		fmtChunk = append(fmtChunk, le16(uint16(ch*c.bits/8))...)
		fmtChunk = append(fmtChunk, le16(uint16(c.bits))...)
		if c.tag == wavExtensible {
			fmtChunk = append(fmtChunk, le16(22)...)
			fmtChunk = append(fmtChunk, le16(uint16(c.bits))...)
			fmtChunk = append(fmtChunk, le32(3)...)
			fmtChunk = append(fmtChunk, le16(sub)...)
			fmtChunk = append(fmtChunk, "\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"...)
		}
		var data []byte
		for range 100 * ch {
			data = append(data, c.sample...)
		}
		f := []byte("RIFF\x00\x00\x00\x00WAVE")
		f = append(f, "fmt "...)
		f = append(f, le32(uint32(len(fmtChunk)))...)
		f = append(f, fmtChunk...)
		f = append(f, "LIST\x03\x00\x00\x00abc\x00"...) // odd size, padded
		f = append(f, "data\xff\xff\xff\xff"...)
		f = append(f, data...)
		clip, err := Decode(bytes.NewReader(f))
		require.NoError(t, err, "tag %d bits %d", c.tag, c.bits)
		require.Equal(t, 16000, clip.SampleRate)
		require.Len(t, clip.Samples, 100)
		for _, s := range clip.Samples {
			require.InDelta(t, 8192, s, 1, "tag %d bits %d", c.tag, c.bits)
		}
	}
}

func le16(v uint16) []byte { return []byte{byte(v), byte(v >> 8)} }
func le32(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }
func le64(v uint64) []byte { return append(le32(uint32(v)), le32(uint32(v>>32))...) }

func TestFormatString(t *testing.T) {
	require.Equal(t, "wav", FormatWAV.String())
	require.Equal(t, "mp3", FormatMP3.String())
	require.Equal(t, "ogg-opus", FormatOggOpus.String())
	require.Equal(t, "unknown", Format(99).String())
}
