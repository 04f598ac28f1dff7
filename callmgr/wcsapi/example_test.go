package wcsapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

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
