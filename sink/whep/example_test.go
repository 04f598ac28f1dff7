package whep_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/whep"
)

// Serve a call at /whep/call1 with a player page at /player/?whep=/whep/call1.
// In sipstream the call's fan-out writes the frames (Fanout.Add("whep", s, 0)).
func Example() {
	s, err := whep.New(whep.Config{
		Video: media.CodecH264, // or leave zero to learn from the first frames
		Audio: media.CodecPCMA,
		// Gather on loopback only; a server behind a 1:1 NAT adds PublicIPs.
		ICEIPs:          []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		RequestKeyframe: func() { /* ask the SIP peer: RTCP PLI/FIR or SIP INFO */ },
		MaxViewers:      100,
	})
	if err != nil {
		panic(err)
	}
	defer s.Close(context.Background())

	mux := http.NewServeMux()
	mux.Handle("/whep/call1", s)  // POST offers here
	mux.Handle("/whep/call1/", s) // DELETE/PATCH viewer resources
	mux.Handle("/player/", http.StripPrefix("/player", whep.PlayerHandler()))

	f := media.Frame{Codec: media.CodecPCMA, Payload: make([]byte, 160), ClockRate: 8000, Channels: 1,
		Keyframe: true, Duration: 20 * time.Millisecond}
	if err := s.WriteFrame(&f); err != nil {
		panic(err)
	}

	req := httptest.NewRequest(http.MethodOptions, "/whep/call1", nil)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("Accept-Post"))
	st := s.Stats()
	fmt.Println("frames in:", st.FramesIn, "viewers:", st.Viewers)
	// Output:
	// 204 application/sdp
	// frames in: 1 viewers: 0
}
