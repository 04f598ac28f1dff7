package record_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/record"
)

// FuzzRecorders feeds both recorders frames built from arbitrary bytes
// (codec, flags, timestamps and payloads a broken peer could send): they must
// return errors or write, never panic.
func FuzzRecorders(f *testing.F) {
	clip := clipFrames(0)
	f.Add(append([]byte{1, 1, 0}, clip[0].Payload[:80]...))
	f.Add([]byte{3, 1, 20, 0xd5, 0xd5, 0xd5, 2, 0, 20, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0xb0, 0x00, 0x90, 0x00})
	f.Add([]byte{7, 1, 10, 0x21, 0x10, 5, 1, 5, 0xfc, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		mkv, err := record.NewMKV(filepath.Join(dir, "f.mkv"), record.Config{Audio: true, Video: true, StartWait: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		flvr, err := record.NewFLV(filepath.Join(dir, "f.flv"), record.Config{Audio: true, Video: true, StartWait: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		var pts time.Duration
		for len(b) >= 3 {
			codec, flags, step := media.Codec(b[0]%9), b[1], b[2]
			b = b[3:]
			n := min(len(b), 40)
			if n > 0 {
				n = int(flags>>2)%n + 1
			}
			payload := b[:n]
			b = b[n:]
			pts += time.Duration(step) * time.Millisecond
			if flags&2 != 0 {
				pts -= 30 * time.Millisecond // out of order
			}
			fr := &media.Frame{Codec: codec, PTS: pts, DTS: pts, Keyframe: flags&1 != 0, ClockRate: 8000,
				Channels: flags >> 6, Payload: payload}
			if codec.Kind() == media.KindVideo {
				fr.ClockRate = 90000
			}
			_ = mkv.WriteFrame(fr)
			_ = flvr.WriteFrame(fr)
		}
		_ = mkv.Close(context.Background())
		_ = flvr.Close(context.Background())
	})
}
