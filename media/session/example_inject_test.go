package session_test

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"net/netip"
	"time"

	"github.com/pion/rtp"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/session"
	"github.com/sipstream/sipstream/media/sound"
)

// Send a sound to the peer in place of silence; the session says when it
// ended and goes back to silence.
func ExampleSession_SetAudioSource() {
	ended := make(chan error, 1)
	s, err := session.New(session.Config{
		IP:               netip.MustParseAddr("127.0.0.1"),
		Audio:            true,
		OnAudioSourceEnd: func(_ sound.Source, err error) { ended <- err }, // nil: played to the end
	})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		panic(err)
	}
	defer peer.Close()
	err = s.Start([]media.StreamSpec{{
		Kind:      media.KindAudio,
		Formats:   []media.PayloadFormat{{PayloadType: 8, Codec: media.CodecPCMA, ClockRate: 8000}},
		Remote:    peer.LocalAddr().(*net.UDPAddr).AddrPort(),
		Direction: media.SendRecv,
	}})
	if err != nil {
		panic(err)
	}

	// 60 ms of 1 kHz; sound.Load reads WAV, MP3 and Ogg Opus files.
	tone := make([]int16, 480)
	for i := range tone {
		tone[i] = int16(8000 * math.Sin(2*math.Pi*1000*float64(i)/8000))
	}
	clip := &sound.Clip{SampleRate: 8000, Samples: tone}
	if err := s.SetAudioSource(clip.Play(8000, false)); err != nil {
		panic(err)
	}
	select {
	case err := <-ended:
		fmt.Println("ended:", err)
	case <-time.After(10 * time.Second):
		fmt.Println("did not end")
	}

	// What the peer got: silence (0xD5) before and after, the sound between.
	buf := make([]byte, 1500)
	voiced := 0
	_ = peer.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	for {
		n, err := peer.Read(buf)
		if err != nil {
			break
		}
		var p rtp.Packet
		if p.Unmarshal(buf[:n]) == nil && len(bytes.Trim(p.Payload, "\xd5")) > 0 {
			voiced++
		}
	}
	fmt.Println(voiced, "packets of sound")
	// Output:
	// ended: <nil>
	// 3 packets of sound
}
