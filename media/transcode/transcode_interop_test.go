//go:build interop

package transcode

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/aac"
)

// checkADTS writes the frames as an ADTS file, has ffprobe describe it and
// ffmpeg decode it (no errors allowed), and checks that a 1 kHz tone fills
// every 20 ms window from 0.2 s to the end minus 0.2 s.
func checkADTS(t *testing.T, frames []media.Frame, rate, nch int, dur time.Duration) {
	t.Helper()
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	ffprobe := testenv.LookPath(t, "ffprobe")
	sfIdx := map[int]int{48000: 3, 44100: 4}[rate]
	var file []byte
	for _, f := range frames {
		file = aac.AppendADTS(file, sfIdx, nch, f.Payload)
	}
	path := filepath.Join(t.TempDir(), "out.aac")
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
	info := strings.TrimSpace(string(testenv.RunClean(t, ffprobe, "-v", "error", "-select_streams", "a:0",
		"-show_entries", "stream=codec_name,sample_rate,channels,profile", "-of", "csv=p=0", path)))
	if want := "aac,LC," + map[int]string{48000: "48000", 44100: "44100"}[rate]; !strings.HasPrefix(info, want) {
		t.Fatalf("ffprobe: %q, want %q...", info, want)
	}
	raw := testenv.RunClean(t, ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-i", path, "-f", "s16le", "-ac", "1", "-")
	pcm := make([]int16, len(raw)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
	}
	// ffmpeg outputs from the priming frame on: drop it.
	pcm = pcm[aac.FrameSamples:]
	got := time.Duration(len(pcm)) * time.Second / time.Duration(rate)
	if got < dur-30*time.Millisecond || got > dur+50*time.Millisecond {
		t.Fatalf("decoded %v, want %v", got, dur)
	}
	win := rate / 50
	worst := 1.0
	for s := rate / 5; s+win <= len(pcm)-rate/5; s += win {
		g := testmedia.Goertzel(pcm[s:s+win], rate, 1000)
		worst = min(worst, g)
		if g < 0.8 {
			t.Fatalf("window at %v: 1 kHz energy fraction %.3f (gap or distortion)", time.Duration(s)*time.Second/time.Duration(rate), g)
		}
	}
	t.Logf("ffprobe %q; %v decoded; worst 20 ms window holds %.1f%% of its energy at 1 kHz", info, got, 100*worst)
}

// TestInteropPCMAToAACFFmpeg: 4 s of a 1 kHz tone in PCMA (with jittered
// arrival order already resolved: contiguous frames) through ToAAC at
// 48 kHz stereo (what Facebook wants), decoded by ffmpeg.
func TestInteropPCMAToAACFFmpeg(t *testing.T) {
	for _, c := range []struct{ rate, nch int }{{48000, 2}, {44100, 1}} {
		tr, err := NewToAAC(AACConfig{SampleRate: c.rate, Channels: c.nch})
		if err != nil {
			t.Fatal(err)
		}
		col := &collector{}
		for _, f := range pcmaFrames(testmedia.Tone(1000, 8000, 0, 32000, 0.5), 0) {
			if err := tr.Write(f, col.emit); err != nil {
				t.Fatal(err)
			}
		}
		tr.Flush(col.emit)
		checkADTS(t, col.frames, c.rate, c.nch, 4*time.Second)
	}
}

// oggPackets returns the packets of an Ogg stream (RFC 3533), in order.
func oggPackets(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var pkts [][]byte
	var cur []byte
	for len(b) > 0 {
		if len(b) < 27 || string(b[:4]) != "OggS" {
			t.Fatalf("bad Ogg page")
		}
		nseg := int(b[26])
		segs := b[27 : 27+nseg]
		data := b[27+nseg:]
		pos := 0
		for _, l := range segs {
			cur = append(cur, data[pos:pos+int(l)]...)
			pos += int(l)
			if l < 255 {
				pkts = append(pkts, cur)
				cur = nil
			}
		}
		b = data[pos:]
	}
	return pkts
}

// TestInteropOpusToAACFFmpeg: libopus (through ffmpeg) encodes a 1 kHz tone
// in 20 ms packets; ToAAC decodes them with pion/opus and encodes AAC;
// ffmpeg decodes the result.
func TestInteropOpusToAACFFmpeg(t *testing.T) {
	for _, c := range []struct {
		src     string
		outChan int
	}{
		{"sine=frequency=1000:sample_rate=48000:duration=4", 1},
		// Stereo Opus (CELT) mixed down to mono, and kept stereo.
		{"aevalsrc=sin(2*PI*1000*t)*0.5|sin(2*PI*1000*t+0.5)*0.4:s=48000:d=4", 1},
		{"aevalsrc=sin(2*PI*1000*t)*0.5|sin(2*PI*1000*t+0.5)*0.4:s=48000:d=4", 2},
	} {
		opusThrough(t, c.src, c.outChan, nil)
	}
}

// TestInteropConcealedAACFFmpeg loses 2 % of the input packets (seeded,
// never two in a row) of a 1 kHz tone, G.711 and Opus: ffmpeg must decode
// the AAC without an error message, and the tone must remain the only
// content of every 20 ms window (a click would spread energy elsewhere; the
// level inside holes is checked by TestConcealShortGaps, since a fraction
// of energy cannot tell a silent hole).
func TestInteropConcealedAACFFmpeg(t *testing.T) {
	lose := func(seed int64, n int) map[int]bool {
		rng := rand.New(rand.NewSource(seed))
		lost := map[int]bool{}
		for i := 10; i < n-10; i++ {
			if !lost[i-1] && rng.Float64() < 0.02 {
				lost[i] = true
			}
		}
		return lost
	}
	for _, seed := range []int64{1, 2} {
		lost := lose(seed, 200)
		t.Logf("seed %d: %d of 200 packets lost", seed, len(lost))
		tr, err := NewToAAC(AACConfig{SampleRate: 48000, Channels: 2})
		if err != nil {
			t.Fatal(err)
		}
		col := &collector{}
		for i, f := range pcmaFrames(testmedia.Tone(1000, 8000, 0, 32000, 0.5), 0) {
			if lost[i] {
				continue
			}
			if err := tr.Write(f, col.emit); err != nil {
				t.Fatal(err)
			}
		}
		tr.Flush(col.emit)
		checkADTS(t, col.frames, 48000, 2, 4*time.Second)
		opusThrough(t, "sine=frequency=1000:sample_rate=48000:duration=4", 1, lose(seed+10, 200))
	}
}

func opusThrough(t *testing.T, src string, outChan int, lost map[int]bool) {
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	ogg := filepath.Join(t.TempDir(), "tone.ogg")
	app := "voip"
	if strings.HasPrefix(src, "aeval") {
		app = "audio"
	}
	testenv.RunClean(t, ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-f", "lavfi", "-i", src,
		"-c:a", "libopus", "-b:a", "48k", "-frame_duration", "20", "-application", app, ogg)
	b, err := os.ReadFile(ogg)
	if err != nil {
		t.Fatal(err)
	}
	pkts := oggPackets(t, b)
	if len(pkts) < 200 || !bytes.HasPrefix(pkts[0], []byte("OpusHead")) {
		t.Fatalf("%d packets", len(pkts))
	}
	tr, err := NewToAAC(AACConfig{Channels: outChan})
	if err != nil {
		t.Fatal(err)
	}
	col := &collector{}
	for i, p := range pkts[2:] { // OpusHead, OpusTags
		if lost[i] {
			continue
		}
		f := &media.Frame{Codec: media.CodecOpus, PTS: time.Duration(i) * 20 * time.Millisecond, Payload: p, ClockRate: 48000, Channels: 1}
		if err := tr.Write(f, col.emit); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	tr.Flush(col.emit)
	checkADTS(t, col.frames, 48000, outChan, time.Duration(len(pkts)-2)*20*time.Millisecond)
}
