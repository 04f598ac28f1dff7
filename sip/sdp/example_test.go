package sdp_test

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sip/sdp"
)

// An outbound call that only receives audio: offer, then negotiate the
// answer the callee sent in its 200 OK.
func ExampleOffer_Negotiate() {
	offer, err := sdp.NewOffer(sdp.OfferConfig{
		Addr:  netip.MustParseAddr("192.0.2.10"),
		Audio: &sdp.MediaConfig{Port: 10000, Direction: media.RecvOnly},
	})
	if err != nil {
		panic(err)
	}
	_ = offer.Marshal() // the INVITE's body

	answer := "v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
	specs, err := offer.Negotiate([]byte(answer))
	if errors.Is(err, sdp.ErrNoCommonCodec) {
		fmt.Println("hang up: 488")
		return
	}
	if err != nil {
		panic(err)
	}
	for _, s := range specs {
		fmt.Println(s.Kind, s.Formats[0].Codec, s.Remote, s.Direction)
	}
	// Output: audio PCMU 203.0.113.5:4000 recvonly
}

// A UAS (or a re-INVITE putting the call on hold) answers the peer's offer.
func ExampleAnswer() {
	offer := "v=0\r\no=- 1 2 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 0 8\r\na=sendonly\r\n"
	_, specs, err := sdp.Answer([]byte(offer), sdp.OfferConfig{
		Addr:  netip.MustParseAddr("192.0.2.10"),
		Audio: &sdp.MediaConfig{Port: 10000},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(specs[0].Formats[0].Codec, specs[0].Direction)
	// Output: PCMA recvonly
}

// A video offer with RFC 4588 retransmission: the answer's rtx format comes
// after the codec it resends.
func ExampleMediaConfig_rtx() {
	offer, err := sdp.NewOffer(sdp.OfferConfig{
		Addr:  netip.MustParseAddr("192.0.2.10"),
		Video: &sdp.MediaConfig{Port: 10002, Codecs: []media.Codec{media.CodecH264}, Feedback: true, RTX: true},
	})
	if err != nil {
		panic(err)
	}
	answer := "v=0\r\no=- 1 1 IN IP4 203.0.113.5\r\ns=-\r\nc=IN IP4 203.0.113.5\r\nt=0 0\r\n" +
		"m=video 4002 RTP/AVP 96 102\r\na=rtpmap:96 H264/90000\r\na=rtpmap:102 rtx/90000\r\n" +
		"a=fmtp:102 apt=96\r\na=rtcp-fb:96 nack\r\n"
	specs, err := offer.Negotiate([]byte(answer))
	if err != nil {
		panic(err)
	}
	for _, f := range specs[0].Formats {
		apt, isRTX := f.AssociatedPayloadType()
		fmt.Println(f.PayloadType, f.Codec, isRTX, apt)
	}
	// Output:
	// 96 H264 false 0
	// 102 rtx true 96
}
