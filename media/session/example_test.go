package session_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/rtp"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/session"
)

// A session receiving G.711 A-law from a peer on loopback: the peer's
// packet comes out as a frame on the call's timeline, and the session
// sends DTMF back.
func Example() {
	ip := netip.MustParseAddr("127.0.0.1")
	frames := make(chan string, 1)
	s, err := session.New(session.Config{
		IP:    ip,
		Audio: true,
		OnFrame: func(f *media.Frame) { // borrowed: copy what you keep
			frames <- fmt.Sprintf("%v frame, %v, %d bytes", f.Codec, f.Duration, len(f.Payload))
		},
	})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	// The peer: in a call its address comes from the SDP answer.
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	defer peer.Close()
	err = s.Start([]media.StreamSpec{{
		Kind: media.KindAudio,
		Formats: []media.PayloadFormat{
			{PayloadType: 8, Codec: media.CodecPCMA, ClockRate: 8000},
			{PayloadType: 101, Codec: media.CodecTelephoneEvent, ClockRate: 8000},
		},
		Remote:    peer.LocalAddr().(*net.UDPAddr).AddrPort(),
		Direction: media.SendRecv,
	}})
	if err != nil {
		panic(err)
	}

	pkt, _ := (&rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: 1, Timestamp: 160, SSRC: 42},
		Payload: bytes.Repeat([]byte{0xd5}, 160),
	}).Marshal()
	if _, err := peer.WriteToUDPAddrPort(pkt, s.LocalAddr(media.KindAudio)); err != nil {
		panic(err)
	}
	select {
	case f := <-frames:
		fmt.Println(f)
	case <-time.After(10 * time.Second):
		fmt.Println("no frame")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fmt.Println(s.SendDTMF(ctx, "5"))
	// Output:
	// PCMA frame, 20ms, 160 bytes
	// <nil>
}
