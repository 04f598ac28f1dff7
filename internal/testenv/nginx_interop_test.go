//go:build interop

package testenv_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sipstream/sipstream/internal/testenv"
)

func TestInteropNginxRTMPStartStop(t *testing.T) {
	n := testenv.StartNginxRTMP(t)
	stat := func() string {
		t.Helper()
		resp, err := http.Get(n.StatURL())
		if err != nil {
			t.Fatalf("stat page: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stat page: %d", resp.StatusCode)
		}
		return string(b)
	}
	if s := stat(); !strings.Contains(s, "<rtmp>") {
		t.Fatalf("stat page is not rtmp_stat XML: %.200s", s)
	}
	n.Stop()
	if _, err := http.Get(n.StatURL()); err == nil {
		t.Fatal("nginx still answers after Stop")
	}
	n.Start()
	if s := stat(); !strings.Contains(s, "<rtmp>") {
		t.Fatalf("after restart: %.200s", s)
	}
	if !strings.HasPrefix(n.RTMPURL(), "rtmp://127.0.0.1:") {
		t.Fatal(n.RTMPURL())
	}
}
