package hls_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/sipstream/sipstream/sink/hls"
)

// A server mounts one Sink per stream; here the call's frames are the test
// clip and a tone, written at once instead of as the call goes.
func Example() {
	s, err := hls.New(hls.Config{Video: true, Audio: true})
	if err != nil {
		panic(err)
	}
	defer s.Close(context.Background())

	mux := http.NewServeMux()
	mux.Handle("/hls/call-1/", s)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, f := range interleave(clipFrames(0), toneFrames(0, 4*time.Second, 0)) {
		if err := s.WriteFrame(f); err != nil {
			panic(err)
		}
	}

	resp, err := http.Get(srv.URL + "/hls/call-1/index.m3u8")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status)
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "#EXT-X-STREAM-INF") {
			fmt.Println(strings.Contains(l, `CODECS="avc1.42c01e,mp4a.40.2"`))
		}
	}
	// Output:
	// 200 OK
	// true
}
