package callmgr

import (
	"context"
	"fmt"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sink/record"
)

// fanoutAdapter plugs sink.Fanout in.
type fanoutAdapter struct{ f *sink.Fanout }

func (a fanoutAdapter) Add(name string, s sink.Sink, queue int) error { return a.f.Add(name, s, queue) }
func (a fanoutAdapter) Remove(ctx context.Context, name string)       { _ = a.f.Remove(ctx, name) }
func (a fanoutAdapter) WriteFrame(fr *media.Frame)                    { _ = a.f.WriteFrame(fr) }
func (a fanoutAdapter) Close(ctx context.Context)                     { _ = a.f.Close(ctx) }

func (a fanoutAdapter) stats() []SinkStats {
	st := a.f.Stats()
	out := make([]SinkStats, len(st))
	for i, s := range st {
		out[i] = SinkStats{ID: s.Name, FramesWritten: s.FramesWritten, FramesDropped: s.FramesDropped,
			FramesSkipped: s.FramesSkipped, Queued: s.Queued}
	}
	return out
}

// errRecordQuota is what a recorder's WriteFrame returns once it reached
// its quota.
var errRecordQuota = record.ErrQuotaReached

// sinkAdapter creates the real fan-out, RTMP sinks and recorders.
type sinkAdapter struct {
	// newRTMP creates RTMP sinks; nil means RTMP is not available in this
	// build.
	newRTMP func(cfg rtmpConfig) (sink.Sink, error)
}

func (sinkAdapter) NewFanout(onDetach func(string, error), keyframeNeeded func()) fanout {
	return fanoutAdapter{sink.NewFanout(sink.FanoutConfig{OnDetach: onDetach, OnKeyframeNeeded: keyframeNeeded})}
}

func (a sinkAdapter) NewRTMP(cfg rtmpConfig) (sink.Sink, error) {
	if a.newRTMP == nil {
		return nil, fmt.Errorf("%w: no RTMP sink in this build", ErrNotConfigured)
	}
	return a.newRTMP(cfg)
}

func (sinkAdapter) NewRecorder(path, format string, audio, video bool, maxBytes int64) (sink.Sink, error) {
	if !audio && !video {
		return nil, fmt.Errorf("callmgr: nothing to record: the call receives no media")
	}
	cfg := record.Config{Audio: audio, Video: video, MaxBytes: maxBytes}
	// Each constructor's result is checked before it becomes a sink.Sink: a
	// nil *MKV in an interface would not be a nil sink.
	switch format {
	case "mp4":
		r, err := record.NewMP4(path, cfg)
		if err != nil {
			return nil, err
		}
		return r, nil
	case "mkv":
		r, err := record.NewMKV(path, cfg)
		if err != nil {
			return nil, err
		}
		return r, nil
	case "flv":
		r, err := record.NewFLV(path, cfg)
		if err != nil {
			return nil, err
		}
		return r, nil
	default:
		return nil, fmt.Errorf("%w: record format %q", ErrNotConfigured, format)
	}
}
