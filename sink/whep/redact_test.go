package whep

import (
	"fmt"
	"strings"
	"testing"
)

// TURN credentials must not show when a Config is printed, in any verb,
// also nested in a caller's struct.
func TestConfigPrintsNoCredential(t *testing.T) {
	cfg := Config{ICEServers: []ICEServer{{URLs: []string{"turn:turn.example.com:3478"}, Username: "alice-user", Credential: "s3cr3t-pass"}}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{cfg, &cfg, cfg.ICEServers[0], struct{ WHEP Config }{cfg}} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, "s3cr3t-pass") || strings.Contains(out, "alice-user") {
				t.Errorf("%s of %T shows the credential: %s", verb, v, out)
			}
		}
	}
	if got := cfg.ICEServers[0].String(); !strings.Contains(got, "turn:turn.example.com:3478") || !strings.Contains(got, "with credentials") {
		t.Errorf("String() = %q", got)
	}
}
