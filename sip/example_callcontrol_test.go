package sip_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sip"
	"github.com/sipstream/sipstream/sip/sdp"
	"github.com/sipstream/sipstream/sip/siptest"
)

// holdOffer builds the offers of a call: version 1 sendrecv, then a
// higher version for each change (RFC 3264 §8).
func holdOffer(version uint64, dir media.Direction) *sdp.Offer {
	o, err := sdp.NewOffer(sdp.OfferConfig{
		Addr: netip.MustParseAddr("127.0.0.1"), SessionID: 7, SessionVersion: version,
		Audio: &sdp.MediaConfig{Port: 40000, Direction: dir},
	})
	if err != nil {
		panic(err)
	}
	return o
}

// ExampleDialog_Reinvite puts a call on hold (sendonly) and takes it off
// hold (sendrecv) with re-INVITEs, against siptest's peer.
func ExampleDialog_Reinvite() {
	peer, _ := siptest.NewPeer(siptest.Config{})
	defer peer.Close()
	ua, _ := sip.NewUA(sip.Config{ListenAddr: "127.0.0.1:0"})
	defer ua.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	d, err := ua.Invite(ctx, sip.InviteRequest{Callee: peer.URI(), From: "streamer", Offer: holdOffer(1, media.SendRecv).Marshal()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Bye(ctx)
	for i, dir := range []media.Direction{media.SendOnly, media.SendRecv} {
		offer := holdOffer(uint64(i+2), dir)
		answer, err := d.Reinvite(ctx, offer.Marshal())
		if err != nil {
			fmt.Println(err)
			return
		}
		streams, err := offer.Negotiate(answer)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("offered", dir, "- audio now", streams[0].Direction)
	}
	// Output:
	// offered sendonly - audio now sendonly
	// offered sendrecv - audio now sendrecv
}

// ExampleDialog_Refer transfers a call (blind transfer, RFC 3515) and
// follows the transfer's progress that the transferee reports.
func ExampleDialog_Refer() {
	peer, _ := siptest.NewPeer(siptest.Config{Script: siptest.Script{ReferResult: 486}})
	defer peer.Close()
	ua, _ := sip.NewUA(sip.Config{ListenAddr: "127.0.0.1:0"})
	defer ua.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	d, err := ua.Invite(ctx, sip.InviteRequest{Callee: peer.URI(), From: "streamer", Offer: holdOffer(1, media.SendRecv).Marshal()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Bye(ctx)
	fmt.Println("peer allows REFER:", d.PeerAllows("REFER"))
	final := make(chan sip.ReferProgress, 1)
	err = d.Refer(ctx, "+4930123", sip.ReferOptions{OnProgress: func(p sip.ReferProgress) {
		// Dialog goroutine: do not block.
		if p.Final {
			final <- p
		}
	}})
	if err != nil {
		fmt.Println("transfer refused:", sip.StatusCode(err))
		return
	}
	p := <-final
	fmt.Println("transfer ended:", p.StatusCode, p.Reason)
	// Output:
	// peer allows REFER: true
	// transfer ended: 486 Busy Here
}
