package whep_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/whep"
)

// answerHosts posts an offer to a sink made with cfg (ICEIPs as given) and
// returns the addresses of the answer's candidates.
func answerHosts(t *testing.T, cfg whep.Config) []string {
	t.Helper()
	cfg.Audio, cfg.MediaWait = media.CodecPCMA, time.Second
	s, err := whep.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	ts := serve(t, s)
	pc, offer := newOffer(t, viewerOpts{noVideo: true})
	defer pc.GracefulClose()
	resp := postOffer(t, ts.URL+"/whep", offer)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(string(body), "\r\n") {
		if f := strings.Fields(l); strings.HasPrefix(l, "a=candidate:") && len(f) >= 8 {
			seen[f[4]] = true
		}
	}
	var out []string
	for h := range seen {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// nonLoopbackIPv4 returns an IPv4 address of an interface other than
// loopback (the container's eth0).
func nonLoopbackIPv4(t *testing.T) netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() && !ip.IsLoopback() {
				return ip.Unmap()
			}
		}
	}
	t.Fatal("this machine has no non-loopback IPv4 address: the test needs several interfaces")
	return netip.Addr{}
}

// Issue 12: a WHEP answer lists only the configured addresses, never every
// address of the machine (docker bridges, VPNs).
func TestAnswerListsOnlyConfiguredAddresses(t *testing.T) {
	lan := nonLoopbackIPv4(t)
	// Unrestricted, the machine's several addresses show (what the
	// restriction must remove).
	all := answerHosts(t, whep.Config{})
	if len(all) < 2 {
		t.Fatalf("unrestricted answer lists %v: expected loopback and %v", all, lan)
	}
	t.Logf("unrestricted: %v", all)

	if got := answerHosts(t, whep.Config{ICEIPs: []netip.Addr{lan}}); strings.Join(got, " ") != lan.String() {
		t.Errorf("ICEIPs %v: answer lists %v", lan, got)
	}
	if got := answerHosts(t, whep.Config{ICEIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}); strings.Join(got, " ") != "127.0.0.1" {
		t.Errorf("ICEIPs 127.0.0.1: answer lists %v", got)
	}
	public := "203.0.113.7"
	got := answerHosts(t, whep.Config{PublicIPs: []netip.Addr{netip.MustParseAddr(public)}, PublicIPsOnly: true})
	if strings.Join(got, " ") != public {
		t.Errorf("PublicIPsOnly %s: answer lists %v", public, got)
	}
	got = answerHosts(t, whep.Config{ICEIPs: []netip.Addr{lan}, PublicIPs: []netip.Addr{netip.MustParseAddr(public)}, PublicIPsOnly: true})
	if strings.Join(got, " ") != public {
		t.Errorf("PublicIPsOnly %s on %v: answer lists %v", public, lan, got)
	}
	if _, err := whep.New(whep.Config{Audio: media.CodecPCMA, PublicIPsOnly: true}); err == nil {
		t.Error("PublicIPsOnly without PublicIPs accepted")
	}
}
