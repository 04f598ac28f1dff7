package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// The clustering flags are checked before anything starts, and credentials
// in -nats URLs are collected for the log's scrubber.
func TestClusterFlags(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-nats", "http://x:4222"}, "-nats: want"},
		{[]string{"-nats", "nats://"}, "-nats: want"},
		{[]string{"-node-id", "a b"}, "-node-id"},
		{[]string{"-cluster-name", "a.b"}, "-cluster-name"},
		{[]string{"-cluster-url", "http://h:1"}, "-cluster-url needs -nats"},
		{[]string{"-nats-creds", "f"}, "-nats-creds needs -nats"},
		{[]string{"-nats", "nats://h:4222", "-cluster-ttl", "500ms"}, "-cluster-ttl"},
		{[]string{"-nats", "nats://h:4222", "-cluster-replicas", "0"}, "-cluster-replicas"},
		{[]string{"-nats", "nats://h:4222", "-cluster-url", "ftp://h"}, "-cluster-url"},
		{[]string{"-nats", "nats://h:4222", "-nats-cert", "c"}, "-nats-cert and -nats-key"},
	} {
		_, err := parseConfig(tc.args, noEnv, io.Discard)
		require.ErrorContains(t, err, tc.err, "%q", tc.args)
	}
	c, err := parseConfig([]string{"-nats", "nats://u:s3cret@h:4222,tls://h2:4222", "-node-id", "gw-1", "-cluster-url", "https://gw1.example:8444"}, noEnv, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "gw-1", c.nodeID())
	require.Equal(t, "https://gw1.example:8444", c.clusterURL("http", "127.0.0.1:1"))
	require.Equal(t, []string{"u", "s3cret"}, natsSecrets(c.Cluster.NATS))

	c, err = parseConfig([]string{"-nats", "nats://h:4222", "-public-ip", "192.0.2.7"}, noEnv, io.Discard)
	require.NoError(t, err)
	require.NotEmpty(t, c.nodeID(), "the host name by default")
	require.Regexp(t, `^[A-Za-z0-9_-]+$`, c.nodeID())
	require.Equal(t, "http://192.0.2.7:8081", c.clusterURL("http", "[::]:8081"))
}
