package callmgr_test

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/sip/siptest"
)

// Call control on a live call: music on hold (a sound played to the peer
// while it is held), then the peer is taken off hold. Hold sends a
// re-INVITE with a=sendonly; the published stream shows the last picture
// and silence meanwhile. In production the sound comes from a file:
// sound.Load("moh.mp3").
func ExampleCall_Hold() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	peer, err := siptest.NewPeer(siptest.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer peer.Close()
	m, err := callmgr.New(callmgr.Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 22000, RTPPortMax: 22999})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close(ctx)
	call, err := m.StartCall(ctx, callmgr.CallParams{CallID: "held", Callee: peer.URI(), HasAudio: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := call.WaitEstablished(ctx); err != nil {
		fmt.Println(err)
		return
	}

	music := &sound.Clip{SampleRate: 8000, Samples: make([]int16, 8000)} // 1 s of 440 Hz
	for i := range music.Samples {
		music.Samples[i] = int16(10000 * math.Sin(2*math.Pi*440*float64(i)/8000))
	}
	if err := call.InjectSound(ctx, music.Play(music.SampleRate, true), "moh"); err != nil {
		fmt.Println(err)
		return
	}
	if err := call.Hold(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(call.Info().Status, call.Info().InjectedSound)
	if err := call.Unhold(ctx); err != nil {
		fmt.Println(err)
		return
	}
	_ = call.InjectSound(ctx, nil, "")
	fmt.Println(call.Info().Status, call.Info().InjectedSound == "")
	// Output:
	// HOLD moh
	// ESTABLISHED true
}
