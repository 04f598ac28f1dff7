package rtmpsink_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/rtmp"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sink/rtmpsink"
)

func Example() {
	// A local RTMP server stands in for YouTube here.
	srv, _ := rtmp.NewServer(rtmp.ServerConfig{})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	// OnStatus runs on the sink's own goroutine: hand the statuses over
	// instead of printing there, so that the output keeps one order.
	statuses := make(chan rtmpsink.Status, 8)
	s, err := rtmpsink.New(rtmpsink.Config{
		URL:        "rtmp://" + l.Addr().String() + "/live2", // e.g. rtmp://a.rtmp.youtube.com/live2
		StreamName: "xxxx-xxxx-xxxx-xxxx",                    // the stream key
		Audio:      true, Video: true,                        // G.711/Opus become AAC (the default AudioMode)
		RequestKeyframe: func() { /* session.RequestKeyframe() */ },
		OnStatus: func(st rtmpsink.Status, _ string) {
			statuses <- st // reason explains LOST and FAILED
		},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(strings.Contains(s.String(), "xxxx")) // String never shows the key

	// The call's fanout gives the sink its goroutine and queue.
	f := sink.NewFanout(sink.FanoutConfig{})
	_ = f.Add("youtube", s, 0)
	for st := range statuses {
		fmt.Println(st)
		if st == rtmpsink.StatusActive {
			break
		}
	}
	// ... f.WriteFrame(frame) for every frame of the call ...
	_ = f.Close(context.Background())
	// Output:
	// false
	// wait
	// active
}

// beep is a sound.Source: a second of a 1 kHz tone at 8 kHz. In practice
// the source is a file decoded by media/sound.
type beep struct{ pos int }

func (b *beep) SampleRate() int { return 8000 }

func (b *beep) Read(p []int16) (int, error) {
	n := min(len(p), 8000-b.pos)
	for i := range p[:n] {
		p[i] = int16(8000 * math.Sin(2*math.Pi*1000*float64(b.pos+i)/8000))
	}
	b.pos += n
	if b.pos == 8000 {
		return n, io.EOF
	}
	return n, nil
}

// Play a sound into a push (the product's /push/sound_on): it is mixed
// with the call's audio, paced by the call's timestamps, and its end is
// reported through OnSoundEnd.
func ExampleSink_SetSound() {
	srv, _ := rtmp.NewServer(rtmp.ServerConfig{})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	active := make(chan struct{})
	ended := make(chan sound.Source, 1)
	s, err := rtmpsink.New(rtmpsink.Config{
		URL: "rtmp://" + l.Addr().String() + "/live", StreamName: "call-1",
		Audio: true, // an audio-only call: G.711 to AAC, with generated video
		OnStatus: func(st rtmpsink.Status, _ string) {
			if st == rtmpsink.StatusActive {
				close(active)
			}
		},
		OnSoundEnd: func(src sound.Source) { ended <- src }, // must not block
	})
	if err != nil {
		panic(err)
	}
	<-active
	if err := s.SetSound(&beep{}); err != nil { // SetSound(nil) would stop it
		panic(err)
	}
	// Two seconds of the call's audio (A-law silence: as if muted).
	silence := bytes.Repeat([]byte{0xd5}, 160)
	for i := 0; i < 100; i++ {
		pts := time.Duration(i) * 20 * time.Millisecond
		_ = s.WriteFrame(&media.Frame{Codec: media.CodecPCMA, PTS: pts, DTS: pts, ClockRate: 8000, Channels: 1,
			Duration: 20 * time.Millisecond, Payload: silence})
	}
	select {
	case <-ended:
		fmt.Println("the sound played to its end")
	default:
		fmt.Println("still playing")
	}
	_ = s.Close(context.Background())
	// Output:
	// the sound played to its end
}
