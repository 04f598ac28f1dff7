package record_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/record"
)

// childEnv makes the test binary act as a recording process (see
// runChild): the usual trick to test what a SIGKILL leaves behind.
const childEnv = "SIPSTREAM_RECORD_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		if err := runChild(v); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// runChild records the clip (looped) and a PCMA tone to the file named in
// spec ("mkv:/path", "flv:/path" or "mp4:/path") at twice real time, printing the PTS in
// milliseconds of every frame once WriteFrame returned, forever (until
// killed). If spec has a third field "keep" the output file is also written
// at the end; that never happens in the kill test.
func runChild(spec string) error {
	kind, path, ok := strings.Cut(spec, ":")
	if !ok {
		return fmt.Errorf("bad spec %q", spec)
	}
	cfg := record.Config{Audio: true, Video: true}
	var w interface {
		WriteFrame(*media.Frame) error
		Close(context.Context) error
	}
	var err error
	switch kind {
	case "mkv":
		w, err = record.NewMKV(path, cfg)
	case "flv":
		w, err = newFLVForChild(path, cfg)
	case "mp4":
		w, err = record.NewMP4(path, cfg)
	default:
		err = fmt.Errorf("bad kind %q", kind)
	}
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	begin := time.Now()
	for loop := 0; ; loop++ {
		off := time.Duration(loop) * 4 * time.Second
		for _, f := range interleave(clipFrames(off), toneFrames(media.CodecPCMA, off, 4*time.Second)) {
			if d := time.Until(begin.Add(f.PTS / 2)); d > 0 {
				time.Sleep(d)
			}
			if err := w.WriteFrame(f); err != nil {
				return err
			}
			fmt.Fprintf(out, "%d\n", f.PTS.Milliseconds())
			_ = out.Flush()
		}
	}
}
