package whep_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sipstream/sipstream/sink/whep"
)

func TestICEAddrs(t *testing.T) {
	lan := netip.MustParseAddr("192.0.2.2")
	local := []netip.Addr{netip.MustParseAddr("127.0.0.1"), lan, netip.MustParseAddr("172.17.0.1"), netip.MustParseAddr("fd00::2")}
	a := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, x := range s {
			out = append(out, netip.MustParseAddr(x))
		}
		return out
	}
	for _, tc := range []struct {
		sip, public  string
		ice, publics []netip.Addr
	}{
		{":5060", "", a("192.0.2.2", "127.0.0.1"), nil},
		{"127.0.0.1:5060", "", a("127.0.0.1"), nil},
		{"192.0.2.2:5060", "", a("192.0.2.2"), nil},
		{":5060", "192.0.2.2", a("192.0.2.2"), nil},
		{":5060", "203.0.113.7", nil, a("203.0.113.7")},
		{"192.0.2.2:5060", "203.0.113.7", a("192.0.2.2"), a("203.0.113.7")},
	} {
		var public netip.Addr
		if tc.public != "" {
			public = netip.MustParseAddr(tc.public)
		}
		ice, pub := whep.ICEAddrs(tc.sip, public, local)
		assert.Equal(t, tc.ice, ice, "%+v", tc)
		assert.Equal(t, tc.publics, pub, "%+v", tc)
	}
}
