package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
)

func TestConfigSRTPQuotaDemoSIP(t *testing.T) {
	none := func(string) string { return "" }
	c, err := parseConfig(nil, none, io.Discard)
	require.NoError(t, err)
	// Unset: callmgr's default (plain RTP out, incoming calls in kind).
	assert.Equal(t, callmgr.SRTPDefault, c.srtp)
	assert.Equal(t, int64(1<<30), c.recordQuota)
	assert.Equal(t, ":5060", c.SIP)

	c, err = parseConfig([]string{"-srtp", "off"}, none, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, callmgr.SRTPOff, c.srtp, "said: incoming SRTP offers refused too")

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
