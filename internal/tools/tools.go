//go:build tools

// Package tools pins the modules sipstream's packages are being built on, so
// that go.mod stays stable while packages that import them are written. It is
// never compiled into a binary.
package tools

import (
	_ "github.com/at-wat/ebml-go"
	_ "github.com/emiago/sipgo"
	_ "github.com/pion/interceptor"
	_ "github.com/pion/opus"
	_ "github.com/pion/rtcp"
	_ "github.com/pion/rtp"
	_ "github.com/pion/sdp/v3"
	_ "github.com/pion/srtp/v3"
	_ "github.com/pion/webrtc/v4"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/stretchr/testify/require"
	_ "go.uber.org/goleak"
)
