package wcsapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/callmgr/wcsapi"
)

// A service mounts the WCS REST API on its own mux. Here the service is an
// httptest.Server, without login; with no call placed yet, find_all answers
// 404, as the product does.
func Example() {
	relay := new(callmgr.Relay)
	m, err := callmgr.New(callmgr.Config{ListenAddr: "127.0.0.1:0", OnEvent: relay.OnEvent})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())
	api, err := wcsapi.New(m, wcsapi.Config{Events: relay, NoAuth: true})
	if err != nil {
		log.Fatal(err)
	}
	defer api.Close()

	mux := http.NewServeMux()
	mux.Handle("/rest-api/", api)
	mux.Handle("GET /events", api)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Post(srv.URL+"/rest-api/call/find_all", "application/json", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var body wcsapi.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&body)
	fmt.Println(resp.StatusCode, body.Message)
	// Output: 404 no calls
}

// A gateway that takes calls: the Inbound is made before the Manager (its
// OnIncoming is the Manager's), given to the Handler with the defaults.
// Phones on 192.0.2.0/24 may call; a call to sip:studio1@gateway is asked
// about at the application's hook (POST https://app.example/hook/OnCallEvent)
// and, when the hook leaves it to the defaults, published to
// rtmp://live.example/in/studio1 after ringing for two seconds.
func ExampleInbound() {
	relay, inbound := new(callmgr.Relay), new(wcsapi.Inbound)
	m, err := callmgr.New(callmgr.Config{ListenAddr: "127.0.0.1:0", OnEvent: relay.OnEvent,
		OnIncoming: inbound.OnIncoming,
		Inbound:    callmgr.InboundConfig{AllowFrom: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())
	api, err := wcsapi.New(m, wcsapi.Config{Events: relay, NoAuth: true, Inbound: inbound,
		Webhook: "https://app.example/hook",
		Dialin:  wcsapi.DialinConfig{RTMPURL: "rtmp://live.example/in", Ring: 2 * time.Second, Hook: true}})
	if err != nil {
		log.Fatal(err)
	}
	defer api.Close()
	fmt.Println("taking calls on port", m.ListenPort("udp") > 0)
	// Output: taking calls on port true
}

// Accounts come from flags or files as SIP URIs; an error never shows the
// password.
func ExampleParseAccount() {
	a, err := wcsapi.ParseAccount("sip:gw:s3cret@pbx.example:5070;transport=tcp")
	fmt.Println(a.User, a.Domain, a.Port, a.Transport, err)
	_, err = wcsapi.ParseAccount("sip:gw:s3cret@pbx.example;transport=sctp")
	fmt.Println(err)
	// Output:
	// gw pbx.example 5070 tcp <nil>
	// sip:gw@pbx.example;transport=sctp: transport "sctp": want udp, tcp or tls
}
