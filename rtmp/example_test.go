package rtmp_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/sipstream/sipstream/rtmp"
	"github.com/sipstream/sipstream/rtmp/flv"
)

// Example runs an embedded Server, publishes to it with a Client and
// observes the stream through a Subscription.
func Example() {
	srv, _ := rtmp.NewServer(rtmp.ServerConfig{
		OnPublish: func(info rtmp.StreamInfo) error {
			fmt.Println("publish", info.App, "query", info.Query) // info.Name is the stream key: keep it out of logs
			return nil
		},
	})
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(l)
	defer srv.Close()

	sub := srv.Subscribe("live", "stream-key", 0)
	defer sub.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rtmp.Dial(ctx, "rtmp://"+l.Addr().String()+"/live/stream-key?token=1", rtmp.ClientConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = c.WriteMetadata(flv.Metadata{AudioCodecID: flv.SoundG711ALaw, AudioSampleRate: 8000})
	for i := 0; i < 3; i++ {
		_ = c.WriteG711(time.Duration(i)*20*time.Millisecond, true, make([]byte, 160))
	}
	_ = c.Close()

	for {
		tag, err := sub.ReadTag(ctx)
		if err != nil {
			fmt.Println("end:", err)
			return
		}
		fmt.Println("tag type", tag.Type, "at", tag.Timestamp, "ms")
	}
	// Output:
	// publish live query token=1
	// tag type 18 at 0 ms
	// tag type 8 at 0 ms
	// tag type 8 at 20 ms
	// tag type 8 at 40 ms
	// end: EOF
}
