package sdp

import (
	"testing"

	"github.com/sipstream/sipstream/media"
)

func FuzzNegotiate(f *testing.F) {
	for _, tc := range negotiateCases {
		f.Add([]byte(tc.answer))
	}
	for _, tc := range answerCases {
		f.Add([]byte(tc.offer))
	}
	o, err := NewOffer(OfferConfig{Addr: localAddr,
		Audio: &MediaConfig{Port: 10000, RTCPMux: true, Crypto: &media.Crypto{}},
		Video: &MediaConfig{Port: 10002, Feedback: true, RTX: true}})
	if err != nil {
		f.Fatal(err)
	}
	plain, err := NewOffer(fullOffer())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, answer []byte) {
		for _, o := range []*Offer{o, plain} {
			specs, err := o.Negotiate(answer)
			if err != nil {
				if specs != nil {
					t.Fatal("specs with an error")
				}
				continue
			}
			if len(specs) == 0 {
				t.Fatal("no specs and no error")
			}
			for _, s := range specs {
				checkSpec(t, s)
			}
		}
	})
}

func FuzzAnswer(f *testing.F) {
	for _, tc := range answerCases {
		f.Add([]byte(tc.offer))
	}
	for _, tc := range negotiateCases {
		f.Add([]byte(tc.answer))
	}
	cfg := OfferConfig{Addr: localAddr,
		Audio: &MediaConfig{Port: 20000, RTCPMux: true, Crypto: &media.Crypto{}},
		Video: &MediaConfig{Port: 20002, Feedback: true, RTX: true}}
	f.Fuzz(func(t *testing.T, offer []byte) {
		body, specs, err := Answer(offer, cfg)
		if err != nil {
			if body != nil || specs != nil {
				t.Fatal("answer with an error")
			}
			return
		}
		for _, s := range specs {
			checkSpec(t, s)
		}
		// Our answer must be valid SDP with one m= line per offered one.
		in, err := parse(offer)
		if err != nil {
			t.Fatal(err)
		}
		out, err := parse(body)
		if err != nil {
			t.Fatalf("answer does not parse: %v\n%s", err, body)
		}
		if len(in.media) != len(out.media) {
			t.Fatalf("%d m= lines answered with %d:\n%s", len(in.media), len(out.media), body)
		}
	})
}

func checkSpec(t *testing.T, s media.StreamSpec) {
	t.Helper()
	if s.Kind != media.KindAudio && s.Kind != media.KindVideo {
		t.Fatalf("kind %v", s.Kind)
	}
	if !s.Remote.IsValid() || s.Remote.Port() == 0 {
		t.Fatalf("remote %v", s.Remote)
	}
	usable := false
	sawRTX := false
	for i, f := range s.Formats {
		if f.Codec == media.CodecRTX {
			// RFC 4588: video only, after every media format, resending a
			// negotiated media format on the same clock.
			apt, ok := f.AssociatedPayloadType()
			if s.Kind != media.KindVideo || !ok {
				t.Fatalf("rtx format %+v in a %v stream", f, s.Kind)
			}
			found := false
			for _, g := range s.Formats[:i] {
				found = found || (g.PayloadType == apt && g.Codec.Kind() == media.KindVideo && g.ClockRate == f.ClockRate)
			}
			if !found {
				t.Fatalf("rtx %+v resends no negotiated format: %+v", f, s.Formats)
			}
			sawRTX = true
			continue
		}
		if f.Codec.Kind() != s.Kind {
			t.Fatalf("%v format in a %v stream", f.Codec, s.Kind)
		}
		if sawRTX {
			t.Fatalf("%v format after rtx: %+v", f.Codec, s.Formats)
		}
		usable = usable || f.Codec != media.CodecTelephoneEvent
	}
	if !usable {
		t.Fatal("stream without a media format")
	}
	seen := map[uint8]bool{}
	for _, f := range s.Formats {
		if seen[f.PayloadType] {
			t.Fatalf("payload type %d twice: %+v", f.PayloadType, s.Formats)
		}
		seen[f.PayloadType] = true
	}
	if s.Crypto != nil && (len(s.Crypto.LocalKey) == 0 || len(s.Crypto.RemoteKey) == 0) {
		t.Fatal("crypto without keys")
	}
}
