package callmgr

import (
	"errors"
	"fmt"
	"time"

	"github.com/sipstream/sipstream/media/session"
)

// sessionFactory plugs media/session in: every call's sockets come from one
// port pool.
type sessionFactory struct {
	pool                      *session.PortPool
	mediaTimeout, idleTimeout time.Duration // as in Config
	listen                    session.ListenFunc
	lossPolicy                session.LossPolicy
	maxKeyframeInterval       time.Duration
}

// sessionWrap adds what callmgr needs to a *session.Session.
type sessionWrap struct{ *session.Session }

func (s sessionWrap) stats() (audio, video MediaStats) {
	st := s.Stats()
	conv := func(x session.StreamStats) MediaStats {
		return MediaStats{
			PacketsReceived:   x.PacketsReceived,
			BytesReceived:     x.BytesReceived,
			PacketsLost:       x.PacketsLost,
			PacketsLate:       x.PacketsLate,
			Frames:            x.Frames,
			FramesDropped:     x.FramesDropped,
			NACKsSent:         x.NACKSent,
			PacketsRecovered:  x.PacketsRecovered,
			KeyframeRequests:  x.PLISent + x.FIRSent + x.KeyframeFallbacks,
			KeyframesReceived: x.KeyframesReceived,
			Freezes:           x.Freezes,
			PacketsSent:       x.PacketsSent,
			StrangerPackets:   x.StrangerPackets,
			InvalidPackets:    x.InvalidPackets,
			SRTPErrors:        x.SRTPErrors,
			SocketDrops:       x.KernelDrops,
			Jitter:            x.Jitter,
			FrozenTime:        x.FrozenTime,
			LongestFreeze:     x.LongestFreeze,
			KeyframeResponse:  x.KeyframeResponse,
			RTT:               x.RTT,
		}
	}
	return conv(st.Audio), conv(st.Video)
}

func (f sessionFactory) New(mc mediaConfig) (mediaSession, error) {
	s, err := session.New(session.Config{
		IP:           mc.IP,
		Ports:        f.pool,
		Audio:        mc.Audio,
		Video:        mc.Video,
		OnFrame:      mc.OnFrame,
		OnDTMF:       mc.OnDTMF,
		MediaTimeout: f.mediaTimeout,
		IdleTimeout:  f.idleTimeout,
		OnEvent: func(ev session.Event) {
			switch ev.Type {
			case session.EventMediaTimeout:
				mc.OnTimeout("no RTP since the call was answered")
			case session.EventMediaStopped:
				mc.OnTimeout("RTP stopped")
			}
		},
		RequestKeyframeFallback: mc.OnKeyframeFallback,
		Listen:                  f.listen,
		LossPolicy:              f.lossPolicy,
		MaxKeyframeInterval:     f.maxKeyframeInterval,
	})
	if errors.Is(err, session.ErrPortsExhausted) {
		return nil, fmt.Errorf("%w: %w", ErrTooManyCalls, err)
	}
	if err != nil {
		return nil, err
	}
	return sessionWrap{s}, nil
}
