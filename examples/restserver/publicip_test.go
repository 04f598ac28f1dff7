package main

import (
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
)

func TestConfigSRTPQuotaDemoSIP(t *testing.T) {
	none := func(string) string { return "" }
	c, err := parseConfig(nil, none, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, callmgr.SRTPOff, c.srtp)
	assert.Equal(t, int64(1<<30), c.recordQuota)
	assert.Equal(t, ":5060", c.SIP)

	c, err = parseConfig([]string{"-srtp", "optional", "-record-quota", "500M"}, none, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, callmgr.SRTPOptional, c.srtp)
	assert.Equal(t, int64(500<<20), c.recordQuota)
	c, err = parseConfig([]string{"-srtp", "required", "-record-quota", "0"}, none, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, callmgr.SRTPRequired, c.srtp)
	assert.Zero(t, c.recordQuota)
	for in, want := range map[string]int64{"1234": 1234, "2G": 2 << 30, "10KiB": 10 << 10, "3mb": 3 << 20} {
		got, err := parseBytes(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, args := range [][]string{{"-srtp", "maybe"}, {"-srtp", ""}, {"-record-quota", "-1"}, {"-record-quota", "lots"}, {"-record-quota", "99999999999T"}} {
		_, err := parseConfig(args, none, io.Discard)
		require.Error(t, err, "%q", args)
	}

	// -demo binds SIP to loopback (its callee is local) unless -sip says.
	c, err = parseConfig([]string{"-demo"}, none, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:5060", c.SIP)
	c, err = parseConfig([]string{"-demo", "-sip", ":5070"}, none, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ":5070", c.SIP)
}

func TestStartupSRTPField(t *testing.T) {
	for body, want := range map[string]callmgr.SRTPMode{
		`{"callId":"a","callee":"b@h"}`:                   callmgr.SRTPDefault,
		`{"callId":"a","callee":"b@h","srtp":"optional"}`: callmgr.SRTPOptional,
		`{"callId":"a","callee":"b@h","srtp":"REQUIRED"}`: callmgr.SRTPRequired,
		`{"callId":"a","callee":"b@h","srtp":true}`:       callmgr.SRTPRequired,
		`{"callId":"a","callee":"b@h","srtp":"false"}`:    callmgr.SRTPOff,
		`{"callId":"a","callee":"b@h","srtp":"off"}`:      callmgr.SRTPOff,
		`{"callId":"a","callee":"b@h","srtp":null}`:       callmgr.SRTPDefault,
		`{"callId":"a","callee":"b@h","srtp":""}`:         callmgr.SRTPDefault,
		`{"callId":"a","callee":"b@h","srtp":1}`:          callmgr.SRTPRequired,
	} {
		var r startupRequest
		require.NoError(t, json.Unmarshal([]byte(body), &r), body)
		p, err := r.validate()
		require.NoError(t, err, body)
		assert.Equal(t, want, p.SRTP, body)
	}
	var r startupRequest
	require.NoError(t, json.Unmarshal([]byte(`{"callId":"a","callee":"b@h","srtp":"sometimes"}`), &r))
	_, err := r.validate()
	var fe *fieldError
	require.True(t, errors.As(err, &fe), "%v", err)
	assert.Equal(t, "srtp", fe.Field)
}

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
		cfg := config{SIP: tc.sip}
		if tc.public != "" {
			cfg.publicIP = netip.MustParseAddr(tc.public)
		}
		ice, pub := iceAddrs(cfg, local)
		assert.Equal(t, tc.ice, ice, "%+v", tc)
		assert.Equal(t, tc.publics, pub, "%+v", tc)
	}
}
