//go:build interop

package testenv_test

import (
	"strings"
	"testing"

	"github.com/sipstream/sipstream/internal/testenv"
)

// TestInteropBaresipRegisters: baresip registers at kamailio with digest
// authentication and kamailio saw the REGISTER.
func TestInteropBaresipRegisters(t *testing.T) {
	kam := testenv.StartKamailio(t, testenv.KamailioConfig{Users: map[string]string{"bob": "pwbob"}})
	b := testenv.StartBaresip(t, testenv.BaresipConfig{User: "bob", Password: "pwbob", Registrar: kam.Addr, Video: true})
	if !strings.Contains(kam.Log(), "req REGISTER") {
		t.Fatalf("kamailio did not log the REGISTER:\n%s", kam.Log())
	}
	t.Logf("baresip %s on SIP port %d", b.AOR, b.SIPPort)
}
