package callmgr

import (
	"fmt"

	"github.com/sipstream/sipstream/media/session"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sink/rtmpsink"
	"github.com/sipstream/sipstream/sip"
)

// newRealBackend wires the SIP user agent (listening on cfg.ListenAddr),
// SDP, media sessions from one port pool, the fan-out, RTMP sinks and
// recorders.
func newRealBackend(cfg *Config) (*backend, error) {
	pool, err := session.NewPortPool(cfg.RTPPortMin, cfg.RTPPortMax)
	if err != nil {
		return nil, fmt.Errorf("callmgr: RTP ports: %w", err)
	}
	ua, err := sip.NewUA(sip.Config{
		ListenAddr:    cfg.ListenAddr,
		PublicAddr:    cfg.PublicIP,
		UserAgent:     cfg.UserAgent,
		TLSConfig:     cfg.SIPTLSConfig,
		TLSListenAddr: cfg.SIPTLSListenAddr,
		Logger:        cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("callmgr: SIP user agent: %w", err)
	}
	mode := rtmpsink.AudioAAC
	if cfg.RTMPAudioPassthrough {
		mode = rtmpsink.AudioPassthrough
	}
	return &backend{
		sig: sipAdapter{ua: ua, in: new(sipInbound)},
		media: sessionFactory{pool: pool, mediaTimeout: cfg.MediaTimeout, idleTimeout: cfg.IdleTimeout, listen: cfg.MediaListen,
			lossPolicy: cfg.LossPolicy, maxKeyframeInterval: max(cfg.MaxKeyframeInterval, 0)},
		sdp:        sdpAdapter{},
		sinks:      sinkAdapter{newRTMP: func(c rtmpConfig) (sink.Sink, error) { return newRTMPSink(c, mode) }},
		close:      ua.Close,
		listenPort: ua.ListenPort,
	}, nil
}
