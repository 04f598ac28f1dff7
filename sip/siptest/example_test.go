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
