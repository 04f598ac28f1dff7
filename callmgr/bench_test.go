package callmgr

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sip/siptest"
)

// BenchmarkCallLifecycle measures the Manager's own cost of a call (with
// fake SIP, media and sinks): admission, run loop, statuses, events,
// teardown.
//
//	go test -run '^$' -bench CallLifecycle -benchmem -benchtime 1s ./callmgr
func BenchmarkCallLifecycle(b *testing.B) {
	w := newFakeWorld()
	m, err := New(Config{ListenAddr: "127.0.0.1:0", OnEvent: func(Event) {}, backend: w.backend()})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close(context.Background())
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c, err := m.StartCall(ctx, CallParams{CallID: fmt.Sprint("b", i), Callee: "answer@h", RTMPURL: "rtmp://h/app", RTMPStream: fmt.Sprint("s", i)})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.WaitEstablished(ctx); err != nil {
			b.Fatal(err)
		}
		if err := c.Terminate(ctx); err != nil {
			b.Fatal(err)
		}
		<-c.Done()
		<-w.answered
		<-w.invited
	}
}

// BenchmarkGuardSink measures what callmgr adds to every frame a sink gets
// (mute check, first-frame report), unmuted and muted A-law.
func BenchmarkGuardSink(b *testing.B) {
	for _, muted := range []bool{false, true} {
		b.Run(fmt.Sprintf("muted=%t", muted), func(b *testing.B) {
			g := &guardSink{inner: nopSink{}, onFirst: func() {}}
			g.muted.Store(muted)
			f := &media.Frame{Codec: media.CodecPCMA, Payload: make([]byte, 160), Duration: 20 * time.Millisecond}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := g.WriteFrame(f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type nopSink struct{}

func (nopSink) WriteFrame(*media.Frame) error { return nil }
func (nopSink) Close(context.Context) error   { return nil }

// BenchmarkRealCallSetup measures a whole call through the real stack on
// loopback: REGISTER-less INVITE to a siptest peer, 200/ACK, media session
// start, BYE, teardown.
//
//	go test -run '^$' -bench RealCallSetup -benchmem -benchtime 1s ./callmgr
func BenchmarkRealCallSetup(b *testing.B) {
	peer, err := siptest.NewPeer(siptest.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer peer.Close()
	m, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 29000, RTPPortMax: 29999})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close(context.Background())
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := m.StartCall(ctx, CallParams{CallID: fmt.Sprint("rb", i), Callee: peer.URI()})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.WaitEstablished(ctx); err != nil {
			b.Fatal(err)
		}
		if err := c.Terminate(ctx); err != nil {
			b.Fatal(err)
		}
		<-c.Done()
	}
}
