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
		Video: &MediaConfig{Port: 10002, Feedback: true}})
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
		Video: &MediaConfig{Port: 20002, Feedback: true}}
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
	for _, f := range s.Formats {
		if f.Codec.Kind() != s.Kind {
			t.Fatalf("%v format in a %v stream", f.Codec, s.Kind)
		}
		usable = usable || f.Codec != media.CodecTelephoneEvent
	}
	if !usable {
		t.Fatal("stream without a media format")
	}
	if s.Crypto != nil && (len(s.Crypto.LocalKey) == 0 || len(s.Crypto.RemoteKey) == 0) {
		t.Fatal("crypto without keys")
	}
}
