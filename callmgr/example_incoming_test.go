package callmgr_test

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/sip/siptest"
)

// Taking calls: OnIncoming decides on each INVITE that Inbound admits
// (here: anything from the loopback network). This one rings for a moment,
// then answers and would publish the call to an RTMP server under the
// number that was called; a real caller is a PBX, a SIP trunk or a phone.
func ExampleManager_incoming() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	answered := make(chan string, 1)
	m, err := callmgr.New(callmgr.Config{
		ListenAddr: "127.0.0.1:0",
		RTPPortMin: 22000, RTPPortMax: 22999,
		Inbound: callmgr.InboundConfig{AllowFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		OnIncoming: func(ctx context.Context, in callmgr.IncomingCall) (callmgr.Decision, error) {
			if in.Callee != "conference" {
				return callmgr.RejectWith(404, "Not Found"), nil
			}
			d := callmgr.AnswerWith(callmgr.CallParams{
				// RTMPURL: "rtmp://live.example.com/app", RTMPStream: in.Callee,
				HasAudio: true,
			})
			d.Ring = 50 * time.Millisecond
			return d, nil
		},
		OnEvent: func(ev callmgr.Event) {
			if ev.Type == callmgr.EventCallStatus && ev.Status == callmgr.StatusEstablished {
				answered <- fmt.Sprintf("%s calls %s: %s", ev.Info.Caller, ev.Info.Callee, ev.Status)
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close(ctx)

	// A scripted caller.
	caller, err := siptest.NewPeer(siptest.Config{User: "alice"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer caller.Close()
	gw := "@127.0.0.1:" + strconv.Itoa(m.ListenPort("udp"))

	if _, err := caller.Call(ctx, "sip:nobody"+gw, siptest.CallOptions{}); err != nil {
		fmt.Println(err)
	}
	call, err := caller.Call(ctx, "sip:conference"+gw, siptest.CallOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-answered)
	_ = call.Hangup(ctx)
	// Output:
	// siptest: INVITE answered 404 Not Found
	// alice calls conference: ESTABLISHED
}
