package main

import (
	"log/slog"

	"github.com/sipstream/sipstream/sip/siptest"
)

// demoEnv is what -demo starts next to the server: a SIP callee on loopback
// that answers every call and streams the H.264 test clip and a 1 kHz tone.
type demoEnv struct {
	peer *siptest.Peer
}

func startDemo(log *slog.Logger) (*demoEnv, error) {
	peer, err := siptest.NewPeer(siptest.Config{
		Addr: "127.0.0.1:0",
		User: "demo",
		Script: siptest.Script{
			Audio:  true,
			Video:  true,
			SendSR: true,
		},
	})
	if err != nil {
		return nil, err
	}
	log.Info("demo SIP callee", "uri", peer.URI())
	return &demoEnv{peer: peer}, nil
}

// defaults are the values the page's form starts with in demo mode.
func (d *demoEnv) defaults() map[string]any {
	return map[string]any{
		"callee":   d.peer.URI(),
		"toStream": "demo",
		"hasAudio": true,
		"hasVideo": true,
	}
}

func (d *demoEnv) close() {
	_ = d.peer.Close()
}
