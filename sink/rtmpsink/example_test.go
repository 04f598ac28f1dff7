package rtmpsink_test

import (
	"fmt"
	"net"
	"strings"

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

	active := make(chan struct{})
	s, err := rtmpsink.New(rtmpsink.Config{
		URL:        "rtmp://" + l.Addr().String() + "/live2", // e.g. rtmp://a.rtmp.youtube.com/live2
		StreamName: "xxxx-xxxx-xxxx-xxxx",                    // the stream key
		Audio:      true, Video: true,                        // G.711/Opus become AAC (the default AudioMode)
		RequestKeyframe: func() { /* session.RequestKeyframe() */ },
		OnStatus: func(st rtmpsink.Status, _ string) {
			fmt.Println(st) // reason explains LOST and FAILED
			if st == rtmpsink.StatusActive {
				close(active)
			}
		},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(strings.Contains(s.String(), "xxxx")) // String never shows the key

	// The call's fanout gives the sink its goroutine and queue.
	f := sink.NewFanout(sink.FanoutConfig{})
	_ = f.Add("youtube", s, 0)
	<-active
	// ... f.WriteFrame(frame) for every frame of the call ...
	_ = f.Close()
	// Output:
	// false
	// RTMP_STREAM_WAIT
	// RTMP_STREAM_ACTIVE
}
