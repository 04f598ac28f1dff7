package callmgr_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/sip/siptest"
)

// A call from start to end: placed to a SIP peer, answered, hung up. In
// production the callee is a phone, a PBX or a conference bridge and
// CallParams.RTMPURL names where to publish (YouTube, nginx-rtmp, ...).
func ExampleManager() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A scripted SIP peer that rings briefly, then answers.
	peer, err := siptest.NewPeer(siptest.Config{Script: siptest.Script{Ring: 20 * time.Millisecond}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer peer.Close()

	last := map[string]callmgr.Status{}
	m, err := callmgr.New(callmgr.Config{
		ListenAddr: "127.0.0.1:0",
		RTPPortMin: 22000, RTPPortMax: 22999,
		// Events of one call arrive in order, from one goroutine.
		OnEvent: func(ev callmgr.Event) {
			if ev.Type == callmgr.EventCallStatus && last[ev.CallID] != ev.Status {
				last[ev.CallID] = ev.Status
				fmt.Println(ev.CallID, ev.Status, ev.SIPStatus)
			}
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close(ctx)

	call, err := m.StartCall(ctx, callmgr.CallParams{
		CallID:   "call-1",
		Callee:   peer.URI(),
		HasAudio: true,
		HasVideo: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := call.WaitEstablished(ctx); err != nil {
		fmt.Println(err)
		return
	}
	if err := m.Terminate(ctx, "call-1"); err != nil {
		fmt.Println(err)
		return
	}
	<-call.Done()
	fmt.Println("live calls:", len(m.FindAll()))
	// Output:
	// call-1 TRYING 0
	// call-1 RING 180
	// call-1 ESTABLISHED 200
	// call-1 FINISH 200
	// live calls: 0
}
