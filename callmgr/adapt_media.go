package callmgr

import (
	"time"

	"github.com/sipstream/sipstream/media/session"
)

// sessionFactory plugs media/session in: every call's sockets come from one
// port pool.
type sessionFactory struct {
	pool                      *session.PortPool
	mediaTimeout, idleTimeout time.Duration // as in Config
}

func (f sessionFactory) New(mc mediaConfig) (mediaSession, error) {
	return session.New(session.Config{
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
	})
}
