package callmgr

import (
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sink/rtmpsink"
)

// newRTMPSink plugs sink/rtmpsink in.
func newRTMPSink(cfg rtmpConfig, mode rtmpsink.AudioMode) (sink.Sink, error) {
	s, err := rtmpsink.New(rtmpsink.Config{
		URL:             cfg.URL,
		StreamName:      cfg.Stream,
		Audio:           cfg.Audio,
		Video:           cfg.Video,
		AudioMode:       mode,
		GiveUpAfter:     cfg.GiveUpAfter,
		RequestKeyframe: cfg.RequestKeyframe,
		OnStatus:        cfg.OnStatus,
		OnSoundEnd:      cfg.OnSoundEnd,
	})
	if err != nil {
		return nil, err // not a nil *Sink inside a non-nil sink.Sink
	}
	return s, nil
}
