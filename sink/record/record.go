// Package record writes a call's frames to files while the call goes on: FLV
// and Matroska (WebM when the codecs allow), both written as live streams so
// that a file cut short by a crash, a power loss or SIGKILL still plays up to
// about the last second written.
//
// What a crash loses: a killed process loses the media not yet written
// (at most Config.FlushInterval, one second by default); a crash of the
// machine or a power loss loses in addition what was written but not yet
// synced to disk, at most Config.SyncInterval (two seconds by default). The
// FLV file then plays to its last complete tag. The Matroska file lacks the
// Cues, Duration and Segment size that Close writes: players read it as a
// live stream (no seeking index, duration from the data) up to its last
// complete cluster.
//
// Files are created with mode 0640 and missing directories with 0750,
// whatever the process umask: recordings hold private conversations.
//
// Both recorders implement sink.Sink and are meant to sit behind a
// sink.Fanout, which gives each its own goroutine: WriteFrame does file I/O.
// Neither starts a goroutine of its own, except a timer that syncs data
// written just before the frames stopped.
//
// A recording starts when every configured track has its first frame (video:
// its first keyframe, which carries the H.264 SPS and PPS that the file's
// header needs). Frames that arrive before are held in memory, for at most
// Config.StartWait of media time (or until Close, for a shorter call); after
// that the file is started with the tracks seen so far and the others are
// left out. The first frame written gets timestamp zero.
//
// Timestamps in a file are strictly increasing per track, in milliseconds,
// whatever the call's frames do (a duplicate, a late frame, two frames in
// one millisecond, a time before the recording's start): a colliding
// timestamp is moved one millisecond after the track's previous one and
// later frames keep their own (media.DTSGuard), so players never see
// "non monotonically increasing dts". FLV video keeps a non-negative
// composition time; Matroska stores presentation times, kept strictly
// increasing the same way (SIP endpoints send no B-frames).
package record

import (
	"errors"
	"sort"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/sipstream/sipstream/media"
)

// Errors returned by the recorders.
var (
	// ErrClosed is returned by WriteFrame after Close.
	ErrClosed = errors.New("record: recorder closed")
	// ErrNoTracks is returned by NewMKV and NewFLV when Config asks for
	// neither audio nor video.
	ErrNoTracks = errors.New("record: no tracks configured")
	// ErrQuotaReached is returned by WriteFrame once the recording reached
	// Config.MaxBytes: the file was finalized and closed, the recording is
	// over (the call it records may go on).
	ErrQuotaReached = errors.New("record: recording quota reached")
)

// Config configures a recorder. Audio or Video must be set.
type Config struct {
	// Audio says the recording has an audio track. Its codec, sample rate
	// and channel count are taken from the first audio frame.
	Audio bool
	// Video says the recording has a video track; its codec comes from the
	// first video keyframe, its picture size from that keyframe's SPS (H.264)
	// or frame header (VP8).
	Video bool

	// AudioSpecificConfig is the AAC AudioSpecificConfig (ISO/IEC 14496-3
	// §1.6.2.1) of AAC audio, as media/transcode's ToAAC reports it. Nil
	// means an AAC-LC one derived from the first frame's ClockRate and
	// Channels. Ignored for other codecs.
	AudioSpecificConfig []byte

	// FlushInterval is how much media time is buffered before it is written
	// to the file: at most this much is lost when the process is killed.
	// Zero means one second.
	FlushInterval time.Duration

	// SyncInterval is how often, in wall-clock time, what was written is
	// forced to disk (fsync) while the recording runs: a crash of the
	// machine or a power loss loses at most this much more than a killed
	// process does (FlushInterval). Zero means 2 seconds; negative means
	// only at Close.
	SyncInterval time.Duration

	// StartWait bounds, in media time, how long frames are held while
	// waiting for a configured track's first frame (typically video's first
	// keyframe). Zero means 10 seconds.
	StartWait time.Duration

	// MaxBytes is the recording's quota: the most bytes its file may hold.
	// When the next write (one FlushInterval of FLV tags, one Matroska
	// cluster together with the index Close adds) would go beyond it, the
	// recording stops before it: the file is finalized as Close would do it
	// (Matroska: Cues, Segment size and Duration), synced and closed, and
	// WriteFrame returns ErrQuotaReached then and on every later call
	// (Close then returns nil). The media of that last write is lost, so
	// the file ends at most FlushInterval before the quota was reached. A
	// quota smaller than the file's header leaves a file with no media
	// (FLV: empty). Zero means no limit; negative is treated as zero.
	MaxBytes int64
}

func (c Config) withDefaults() (Config, error) {
	if !c.Audio && !c.Video {
		return c, ErrNoTracks
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = time.Second
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = 2 * time.Second
	}
	if c.StartWait <= 0 {
		c.StartWait = 10 * time.Second
	}
	return c, nil
}

// Stats are a recorder's counters.
type Stats struct {
	// FramesWritten counts frames written to the file (or its buffer).
	FramesWritten uint64
	// FramesIgnored counts frames not written: video before the first
	// keyframe, frames of a kind not configured, of a codec other than the
	// track's (the peer switched codec), or that the container cannot hold.
	FramesIgnored uint64
	// Bytes is the size of the file written so far, buffered data excluded.
	Bytes int64
}

// track is what a recorder knows about one track once the file started.
type track struct {
	codec     media.Codec
	clockRate uint32
	channels  uint8
	first     *media.Frame // first frame (video: first keyframe)
}

// starter holds frames until every configured track has its first frame,
// then releases them in decoding order with the timeline origin.
type starter struct {
	cfg     Config
	audio   *track
	video   *track
	pending []*media.Frame
	bytes   int // payload bytes of pending
	started bool
	base    time.Duration
	ignored uint64
	one     [1]*media.Frame // push's result after the start, reused
}

// push takes one frame. Before the start it returns nil (frame held or
// ignored); at the start it returns every held frame, sorted by DTS; after
// the start it returns the frame itself if it belongs to a track, in a slice
// valid until the next call.
func (s *starter) push(f *media.Frame) []*media.Frame {
	k := f.Kind()
	if (k == media.KindAudio && !s.cfg.Audio) || (k == media.KindVideo && !s.cfg.Video) || k == media.KindUnknown ||
		f.Codec == media.CodecTelephoneEvent {
		s.ignored++
		return nil
	}
	if s.started {
		t := s.audio
		if k == media.KindVideo {
			t = s.video
		}
		if t == nil || t.codec != f.Codec {
			s.ignored++
			return nil
		}
		s.one[0] = f
		return s.one[:]
	}
	switch k {
	case media.KindVideo:
		if s.video == nil {
			if !f.Keyframe {
				s.ignored++
				return nil
			}
			s.video = &track{codec: f.Codec, clockRate: f.ClockRate, first: f}
		} else if f.Codec != s.video.codec {
			s.ignored++
			return nil
		}
	case media.KindAudio:
		if s.audio == nil {
			s.audio = &track{codec: f.Codec, clockRate: f.ClockRate, channels: f.Channels, first: f}
		} else if f.Codec != s.audio.codec {
			s.ignored++
			return nil
		}
	}
	s.pending = append(s.pending, f)
	s.bytes += len(f.Payload)
	ready := (!s.cfg.Audio || s.audio != nil) && (!s.cfg.Video || s.video != nil)
	if !ready {
		lo, hi := s.pending[0].DTS, s.pending[0].DTS
		for _, p := range s.pending {
			lo, hi = min(lo, p.DTS), max(hi, p.DTS)
		}
		if hi-lo < s.cfg.StartWait && len(s.pending) < maxPending && s.bytes < maxPendingBytes {
			return nil
		}
	}
	return s.start()
}

// startNow starts the recording with the tracks seen so far (the recorder
// is closing before every configured track showed up: a short call) and
// returns the held frames as push does at the start; nil when already
// started or nothing is held.
func (s *starter) startNow() []*media.Frame {
	if s.started || len(s.pending) == 0 {
		return nil
	}
	return s.start()
}

func (s *starter) start() []*media.Frame {
	s.started = true
	out := s.pending
	s.pending = nil
	s.bytes = 0
	sort.SliceStable(out, func(i, j int) bool { return out[i].DTS < out[j].DTS })
	s.base = out[0].DTS
	for _, p := range out {
		s.base = min(s.base, p.PTS)
	}
	return out
}

// maxPending bounds the frames held before the start (10 s of 50 pps audio
// plus 30 fps video, with room to spare).
const maxPending = 2000

// maxPendingBytes bounds the payload held before the start: 2000 frames
// alone could be gigabytes of a peer's multi-megabyte access units (whose
// timestamps, standing still, would never reach StartWait).
const maxPendingBytes = 64 << 20

// stamp places a frame on the recording's clock in milliseconds through its
// track's guard: the DTS strictly after the track's previous one, the PTS
// never before the DTS (see media.DTSGuard). Times before the recording's
// start count as its start.
func (s *starter) stamp(g *media.DTSGuard, f *media.Frame) (pts, dts int64) {
	return g.Stamp(s.rel(f.PTS), s.rel(f.DTS))
}

// rel is d relative to the recording's start, never negative.
func (s *starter) rel(d time.Duration) time.Duration {
	return max(d-s.base, 0)
}

// defaultASC builds an AAC-LC AudioSpecificConfig (object type 2) for a
// sample rate and channel count with mediacommon. Only the 2-byte form is
// accepted: a rate outside the index table would need the explicit 24-bit
// escape, which not every player reads, and 7 channels have no channel
// configuration. Specification: ISO/IEC 14496-3 §1.6.2.1.
func defaultASC(rate uint32, channels uint8) ([]byte, error) {
	errNoASC := errors.New("record: no AudioSpecificConfig and no standard AAC rate/channels to derive one")
	if channels == 0 {
		return nil, errNoASC
	}
	asc, err := mpeg4audio.AudioSpecificConfig{
		Type:         mpeg4audio.ObjectTypeAACLC,
		SampleRate:   int(rate),
		ChannelCount: int(channels),
	}.Marshal()
	if err != nil || len(asc) != 2 {
		return nil, errNoASC
	}
	return asc, nil
}
