package whip_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/media/whip"
)

// A service takes an operator's microphone, published from a browser to
// /whip/op1, as a sound.Source it can play into a call
// (callmgr.Call.InjectSound).
func Example() {
	srv, err := whip.New(whip.Config{MaxPublishers: 10})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close(context.Background())
	mux := http.NewServeMux()
	mux.Handle("/whip/", srv) // put your login in front of it

	live, err := sound.NewLive(8000)
	if err != nil {
		fmt.Println(err)
		return
	}
	cancel, err := srv.Subscribe("op1",
		func(f *media.Frame) { _ = live.WriteFrame(f) }, // decodes Opus, PCMA, PCMU
		func() { _ = live.Close() })                     // the publication ended: the Source ends
	if errors.Is(err, whip.ErrNotFound) {
		fmt.Println("nobody publishes op1 yet")
		return
	}
	defer cancel()
	// ... call.InjectSound(ctx, live, "stream:op1")

	// Output: nobody publishes op1 yet
}
