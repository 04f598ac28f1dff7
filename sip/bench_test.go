package sip

import (
	"context"
	"testing"
	"time"
)

// BenchmarkInviteBye measures a full call setup and teardown over loopback
// UDP against the in-test sipgo peer (INVITE, 180, 200, ACK, BYE, 200).
func BenchmarkInviteBye(b *testing.B) {
	p := newTestPeer(b)
	ua := newTestUA(b)
	r := basicInvite(p)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := ua.Invite(ctx, r)
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Bye(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendInfo measures one in-dialog INFO round trip (DTMF relay).
func BenchmarkSendInfo(b *testing.B) {
	p := newTestPeer(b)
	ua := newTestUA(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := ua.Invite(ctx, basicInvite(p))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Bye(ctx)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := d.SendDTMF(ctx, '5', true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseDTMFRelay(b *testing.B) {
	body := []byte("Signal=5\r\nDuration=160\r\n")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, _, err := parseDTMF("application/dtmf-relay", body); err != nil {
			b.Fatal(err)
		}
	}
}
