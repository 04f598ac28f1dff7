package siptest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sipstream/sipstream/sip/siptest"
)

// A test starts a peer that answers after ringing for 100 ms and streams a
// tone, points the code under test at peer.URI(), and checks what the peer
// received.
func Example() {
	peer, err := siptest.NewPeer(siptest.Config{
		Script: siptest.Script{Ring: 100 * time.Millisecond, Audio: true, SendSR: true},
	})
	if err != nil {
		panic(err)
	}
	defer peer.Close()

	fmt.Println(peer.URI()[:len("sip:peer@127.0.0.1:")])

	// ... the code under test calls peer.URI() here ...
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if call, err := peer.WaitCall(ctx); err == nil {
		_ = call.WaitBye(ctx)
		fmt.Println(call.Header("X-Custom"), call.DTMF())
	}
	// Output: sip:peer@127.0.0.1:
}

// A peer that is busy.
func ExampleScript_reject() {
	peer, err := siptest.NewPeer(siptest.Config{Script: siptest.Script{Reject: 486}})
	if err != nil {
		panic(err)
	}
	defer peer.Close()
	// Calls to peer.URI() fail with 486 Busy Here.
}

// A phone on a lossy link: live video with a 10 s GOP that answers keyframe
// requests at once but never retransmits on NACK. The code under test calls
// peer.URI(); the test then checks how often it had to ask for a keyframe.
func ExampleLiveVideo() {
	peer, err := siptest.NewPeer(siptest.Config{Script: siptest.Script{
		Audio: true, Video: true,
		LiveVideo:    &siptest.LiveVideo{GOP: 10 * time.Second},
		NoRetransmit: true,
	}})
	if err != nil {
		panic(err)
	}
	defer peer.Close()

	// ... the code under test calls peer.URI() here ...
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if call, err := peer.WaitCall(ctx); err == nil {
		err := call.WaitVideoSent(ctx, func(s siptest.VideoSendStats) bool { return s.RequestedKeyframes >= 1 })
		fmt.Println(err, call.VideoSent().RequestedKeyframes, call.RTCP().NACK)
	}
	fmt.Println(peer.Transport())
	// Output: udp
}

// A peer places a call: to another peer here, to the code under test (a
// gateway answering calls) in a real test. Call returns once the call is
// answered and acknowledged; the call then streams a tone, sends DTMF (RFC
// 4733 events and SIP INFO) and hangs up.
func ExamplePeer_Call() {
	callee, err := siptest.NewPeer(siptest.Config{User: "gw", Script: siptest.Script{Audio: true}})
	if err != nil {
		panic(err)
	}
	defer callee.Close()
	caller, err := siptest.NewPeer(siptest.Config{User: "alice"})
	if err != nil {
		panic(err)
	}
	defer caller.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	call, err := caller.Call(ctx, callee.URI(), siptest.CallOptions{
		DisplayName: "Alice", NoVideo: true,
		Script: siptest.Script{Audio: true, ToneHz: 600},
	})
	if err != nil {
		panic(err)
	}
	answered, _ := callee.WaitCall(ctx)
	_ = call.SendDTMF(ctx, "1") // RFC 4733 on the audio stream
	_, _ = answered.WaitDTMF(ctx, 1)
	_ = call.SendDTMFInfo(ctx, "#", 0) // INFO application/dtmf-relay
	_ = call.Hangup(ctx)               // BYE
	_ = answered.WaitBye(ctx)
	fmt.Println(answered.FromDisplayName(), answered.DTMF(), answered.End())
	// Output: Alice 1# remote BYE
}
