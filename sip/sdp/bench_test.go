package sdp

import "testing"

// BenchmarkNegotiate measures negotiating a FreeSWITCH audio+video answer.
func BenchmarkNegotiate(b *testing.B) {
	o, err := NewOffer(fullOffer())
	if err != nil {
		b.Fatal(err)
	}
	answer := []byte(negotiateCases[1].answer)
	b.ReportAllocs()
	b.SetBytes(int64(len(answer)))
	for i := 0; i < b.N; i++ {
		if _, err := o.Negotiate(answer); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnswer measures answering Linphone's audio+video+T.38 offer.
func BenchmarkAnswer(b *testing.B) {
	tc := answerCases[2]
	offer := []byte(tc.offer)
	b.ReportAllocs()
	b.SetBytes(int64(len(offer)))
	for i := 0; i < b.N; i++ {
		if _, _, err := Answer(offer, tc.cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewOffer measures building and marshalling an audio+video offer.
func BenchmarkNewOffer(b *testing.B) {
	cfg := fullOffer()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := NewOffer(cfg); err != nil {
			b.Fatal(err)
		}
	}
}
