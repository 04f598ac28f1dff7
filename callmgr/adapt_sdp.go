package callmgr

import (
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sip/sdp"
)

// sdpAdapter plugs package sip/sdp in.
type sdpAdapter struct{}

func (sdpAdapter) sdpConfig(cfg offerConfig) sdp.OfferConfig {
	out := sdp.OfferConfig{Addr: cfg.Addr, SessionID: cfg.SessionID, SessionVersion: cfg.Version}
	if cfg.AudioPort != 0 {
		out.Audio = &sdp.MediaConfig{Port: cfg.AudioPort, Direction: cfg.AudioDir, Codecs: cfg.AudioCodecs}
	}
	if cfg.VideoPort != 0 {
		// nack, nack pli and ccm fir: the session asks for keyframes by
		// RTCP when the peer accepts it, by SIP INFO otherwise. RTX (RFC
		// 4588): a peer that retransmits on NACK may do it on its own SSRC
		// (the rtx formats come after the codecs in the StreamSpec).
		out.Video = &sdp.MediaConfig{Port: cfg.VideoPort, Direction: cfg.VideoDir, Codecs: cfg.VideoCodecs, Feedback: true, RTX: true}
	}
	if cfg.SRTP {
		// An empty Crypto: the default suite and a random key per stream.
		for _, mc := range []*sdp.MediaConfig{out.Audio, out.Video} {
			if mc != nil {
				mc.Crypto = &media.Crypto{}
			}
		}
	}
	return out
}

func (a sdpAdapter) NewOffer(cfg offerConfig) (sdpOffer, error) {
	o, err := sdp.NewOffer(a.sdpConfig(cfg))
	if err != nil {
		return nil, err
	}
	return o, nil
}

func (a sdpAdapter) Answer(offer []byte, cfg offerConfig) ([]byte, []media.StreamSpec, error) {
	return sdp.Answer(offer, a.sdpConfig(cfg))
}
