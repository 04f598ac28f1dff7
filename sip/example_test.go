package sip_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sipstream/sipstream/sip"
)

// Example places a call through a PBX with digest authentication, sends a
// DTMF digit and hangs up.
func Example() {
	ua, err := sip.NewUA(sip.Config{ListenAddr: "127.0.0.1:0", UserAgent: "example"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ua.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d, err := ua.Invite(ctx, sip.InviteRequest{
		Callee:      "bob",
		Domain:      "pbx.invalid", // no such host: the example shows the error path
		From:        "1000",
		AuthUser:    "auth-1000",
		Password:    "secret",
		DisplayName: "Stream bot",
		Offer:       []byte("v=0\r\n..."),
	})
	switch {
	case errors.Is(err, sip.ErrBusy):
		fmt.Println("busy")
		return
	case err != nil:
		fmt.Println("call failed")
		return
	}
	defer d.Bye(context.Background())
	_ = d.SendDTMF(ctx, '5', true)

	// Output: call failed
}

// ExampleValidateUser shows the grammar check applied to logins.
func ExampleValidateUser() {
	fmt.Println(sip.ValidateUser("alice.smith+1"))
	fmt.Println(errors.Is(sip.ValidateUser("alice smith"), sip.ErrInvalidParams))
	// Output:
	// <nil>
	// true
}

// ExampleValidateHeader shows what a caller may add to an INVITE: reserved
// headers are refused in any case and in their compact forms.
func ExampleValidateHeader() {
	fmt.Println(sip.ValidateHeader(sip.Header{Name: "X-Room", Value: "42"}))
	fmt.Println(sip.IsReservedHeader("i"), sip.IsReservedHeader("CALL-ID"))
	var pe *sip.ParamError
	if errors.As(sip.ValidateHeader(sip.Header{Name: "X-Room", Value: "42\r\nVia: evil"}), &pe) {
		fmt.Println(pe.Field)
	}
	// Output:
	// <nil>
	// true true
	// header
}

// ExampleValidateCallee shows the three forms of a callee.
func ExampleValidateCallee() {
	fmt.Println(sip.ValidateCallee("sip:bob@pbx.example;transport=tcp", ""))
	fmt.Println(sip.ValidateCallee("bob@sip_pbx:5070", ""))
	fmt.Println(sip.ValidateCallee("1002", "pbx.example"))
	fmt.Println(sip.ValidateCallee("1002", "") != nil)
	// Output:
	// <nil>
	// <nil>
	// <nil>
	// true
}

// ExampleUA_OnInvite answers calls: a gateway authenticates the caller
// with digest, rings, answers with its SDP and hangs up. Here a second UA
// on loopback plays the caller.
func ExampleUA_OnInvite() {
	gw, err := sip.NewUA(sip.Config{ListenAddr: "127.0.0.1:0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer gw.Close()
	users := sip.NewAuthenticator("gateway", func(user string) (string, bool) {
		if user == "alice" {
			return "s3cret", true
		}
		return "", false
	})
	answered := make(chan *sip.Dialog, 1)
	gw.OnInvite(func(in *sip.IncomingInvite) {
		user, err := in.Authenticate(users) // 401 (then the caller retries) or 403
		if err != nil {
			return
		}
		fmt.Printf("%s calls %s\n", user, in.RequestUser())
		_ = in.Progress(180, "Ringing", nil)
		d, err := in.Answer(context.Background(), []byte(exampleAnswer), sip.AnswerOptions{})
		if err != nil {
			fmt.Println(err)
			return
		}
		answered <- d
	})

	phone, err := sip.NewUA(sip.Config{ListenAddr: "127.0.0.1:0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer phone.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	call, err := phone.Invite(ctx, sip.InviteRequest{
		Callee:   fmt.Sprintf("sip:stream42@127.0.0.1:%d", gw.ListenPort("udp")),
		From:     "alice",
		Password: "s3cret",
		Offer:    []byte(exampleOffer),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	d := <-answered
	fmt.Println("incoming:", d.Incoming())
	_ = d.Bye(ctx)
	<-call.Done()
	fmt.Println("caller sees:", call.Err())
	// Output:
	// alice calls stream42
	// incoming: true
	// caller sees: sip: remote hangup
}

const (
	exampleOffer  = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
	exampleAnswer = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
)
