package rtmpsink_test

import (
	"context"
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
