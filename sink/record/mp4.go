package record

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/transcode"
	"github.com/sipstream/sipstream/sink"
)

var _ sink.Sink = (*MP4)(nil)

// MP4 is a fragmented MP4 recorder (ISO/IEC 14496-12 movie fragments,
// written with github.com/bluenviron/mediacommon/v2's fmp4 package). The
// file starts with a moov that declares the tracks and no samples; media
// follows in fragments (moof + mdat), each built in memory and written
// whole, with one write, about once per Config.FlushInterval (a video
// fragment starts at a keyframe when one comes in time). A file cut short
// plays up to its last complete fragment; fragments carry their own
// timing, so a finished file needs no index: Close writes the last
// fragment and syncs.
//
// Video: H.264 (avcC from the first keyframe's SPS and PPS; later ones stay
// in-band). Audio: AAC (with Config.AudioSpecificConfig, or one derived
// from the first frame), Opus, and G.711, which MP4 players do not agree
// on and is therefore transcoded to AAC-LC (48 kHz mono, media/transcode).
// VP8 and Speex tracks are left out (no MP4 mapping in mediacommon), their
// frames counted as ignored.
type MP4 struct {
	recorder

	header bool
	video  *mp4Track // nil: no video track
	audio  *mp4Track // nil: no audio track
	conv   *transcode.ToAAC

	seq      uint32 // fragments written
	fragOpen bool
	fragAt   time.Duration // timeline (relative) start of the open fragment
	buf      seekablebuffer.Buffer
}

// mp4Track is one track of an MP4 recording.
type mp4Track struct {
	id    int
	scale int64 // time scale (units per second)
	guard media.DTSGuard
	// held is the track's last sample: its duration is known only when the
	// next one comes.
	held    *fmp4.Sample
	heldDTS int64
	// lastDur is the duration of the sample before held (the duration
	// given to the last sample of the recording).
	lastDur int64
	// defDur is the nominal duration of a sample (audio), 0 if unknown.
	defDur int64
	frag   *fmp4.PartTrack // samples of the open fragment
}

// NewMP4 creates (or truncates) the file at path and returns a recorder
// writing fragmented MP4 to it. Nothing is written until the recording
// starts (see the package documentation).
func NewMP4(path string, cfg Config) (*MP4, error) {
	m := &MP4{}
	if err := m.open(path, cfg, m); err != nil {
		return nil, err
	}
	return m, nil
}

// WriteFrame adds f to the recording. It retains f until its fragment is
// written (frames from a sink.Fanout are immutable). It returns the first
// write error again on every later call.
func (m *MP4) WriteFrame(f *media.Frame) error { return m.writeFrame(f) }

// atQuota: what was written is a complete fragmented MP4.
func (m *MP4) atQuota() error { return m.f.Sync() }

func (m *MP4) writeLocked(f *media.Frame) error {
	if !m.header {
		if err := m.writeHeader(); err != nil {
			return err
		}
	}
	if f.Kind() == media.KindVideo {
		if m.video == nil {
			m.st.ignored++
			return nil
		}
		pts, dts := m.st.stamp(&m.video.guard, f)
		return m.add(m.video, f.PTS, dts, &fmp4.Sample{
			PTSOffset:       int32(min(pts-dts, 1<<31-1)),
			IsNonSyncSample: !f.Keyframe,
			Payload:         f.Payload,
		}, f.Keyframe)
	}
	if m.audio == nil {
		m.st.ignored++
		return nil
	}
	if m.conv == nil {
		_, dts := m.st.stamp(&m.audio.guard, f)
		return m.add(m.audio, f.PTS, dts, &fmp4.Sample{Payload: f.Payload}, false)
	}
	var werr error
	if err := m.conv.Write(f, func(out *media.Frame) {
		if werr == nil {
			_, dts := m.st.stamp(&m.audio.guard, out)
			werr = m.add(m.audio, out.PTS, dts, &fmp4.Sample{Payload: out.Payload}, false)
		}
	}); err != nil {
		m.st.ignored++ // undecodable payload: the transcoder conceals it
	}
	return werr
}

// add appends a sample (its DTS in the track's time scale, at timeline
// position at) to the track, writing the open fragment first when it is
// due.
func (m *MP4) add(t *mp4Track, at time.Duration, dts int64, s *fmp4.Sample, key bool) error {
	if len(s.Payload) == 0 {
		m.st.ignored++
		return nil
	}
	// The track's previous sample now has its duration: it ends the open
	// fragment, so that a video fragment started by a keyframe starts
	// with it.
	if t.held != nil {
		d := dts - t.heldDTS
		t.push(t.held, t.heldDTS, d)
		t.lastDur = d
		t.held = nil
	}
	rel := m.st.rel(at)
	age := rel - m.fragAt
	flush := m.cfg.FlushInterval
	if m.fragOpen && (age >= flush || age < -30*time.Second || (key && t == m.video && age >= flush/4)) {
		if err := m.flushFragment(); err != nil {
			return err
		}
	}
	if !m.fragOpen {
		m.fragOpen = true
		m.fragAt = rel
	}
	t.held, t.heldDTS = s, dts
	m.written++
	return nil
}

// push appends a sample whose duration is now known to the open fragment.
func (t *mp4Track) push(s *fmp4.Sample, dts, dur int64) {
	if t.frag == nil {
		t.frag = &fmp4.PartTrack{ID: t.id, BaseTime: uint64(dts)}
	}
	s.Duration = uint32(min(max(dur, 0), 1<<32-1))
	t.frag.Samples = append(t.frag.Samples, s)
}

// flushFragment writes the open fragment (the samples of every track whose
// duration is known) with one write.
func (m *MP4) flushFragment() error {
	m.fragOpen = false
	var part fmp4.Part
	for _, t := range []*mp4Track{m.video, m.audio} {
		if t != nil && t.frag != nil {
			part.Tracks = append(part.Tracks, t.frag)
			t.frag = nil
		}
	}
	if len(part.Tracks) == 0 {
		return nil
	}
	m.seq++
	part.SequenceNumber = m.seq
	m.buf.Reset()
	if err := part.Marshal(&m.buf); err != nil {
		return fmt.Errorf("record: marshal MP4 fragment: %w", err)
	}
	if q := m.cfg.MaxBytes; q > 0 && m.size+int64(len(m.buf.Bytes())) > q {
		return ErrQuotaReached
	}
	return m.write(m.buf.Bytes())
}

func (m *MP4) write(b []byte) error {
	n, err := m.f.Write(b)
	m.size += int64(n)
	if err != nil {
		return fmt.Errorf("record: write: %w", err)
	}
	return m.sy.wrote()
}

// writeHeader writes ftyp and moov for the tracks the starter found.
func (m *MP4) writeHeader() error {
	m.header = true
	var ini fmp4.Init
	if v := m.st.video; v != nil && v.codec == media.CodecH264 {
		if sps, pps, err := paramSets(v.first.Payload); err == nil {
			if _, err := parseSPS(sps); err == nil {
				m.video = &mp4Track{id: len(ini.Tracks) + 1, scale: 90000}
				ini.Tracks = append(ini.Tracks, &fmp4.InitTrack{ID: m.video.id, TimeScale: 90000,
					Codec: &codecs.H264{SPS: sps, PPS: pps}})
			}
		}
	}
	if a := m.st.audio; a != nil {
		codec, rate, defDur, err := m.audioCodec(a)
		if err == nil {
			m.audio = &mp4Track{id: len(ini.Tracks) + 1, scale: int64(rate), defDur: defDur}
			ini.Tracks = append(ini.Tracks, &fmp4.InitTrack{ID: m.audio.id, TimeScale: uint32(rate), Codec: codec})
		}
	}
	if len(ini.Tracks) == 0 {
		return errors.New("record: no track the MP4 recorder can write (unsupported codecs)")
	}
	for _, t := range []*mp4Track{m.video, m.audio} {
		if t != nil {
			t.guard.Rate = t.scale
			t.lastDur = t.defDur
		}
	}
	m.buf.Reset()
	if err := ini.Marshal(&m.buf); err != nil {
		return fmt.Errorf("record: marshal MP4 header: %w", err)
	}
	if q := m.cfg.MaxBytes; q > 0 && int64(len(m.buf.Bytes())) > q {
		return ErrQuotaReached
	}
	return m.write(m.buf.Bytes())
}

// audioCodec returns the MP4 codec, time scale and nominal sample duration
// for the audio track; G.711 gets a transcoder to AAC.
func (m *MP4) audioCodec(a *track) (codecs.Codec, int, int64, error) {
	ch := max(a.channels, 1)
	switch a.codec {
	case media.CodecAAC:
		asc := m.cfg.AudioSpecificConfig
		if asc == nil {
			var err error
			if asc, err = defaultASC(a.clockRate, ch); err != nil {
				return nil, 0, 0, err
			}
		}
		var cfg mpeg4audio.AudioSpecificConfig
		if err := cfg.Unmarshal(asc); err != nil {
			return nil, 0, 0, fmt.Errorf("record: AudioSpecificConfig: %w", err)
		}
		return &codecs.MPEG4Audio{Config: cfg}, cfg.SampleRate, mpeg4audio.SamplesPerAccessUnit, nil
	case media.CodecOpus:
		return &codecs.Opus{ChannelCount: int(min(ch, 2))}, 48000, 960, nil
	case media.CodecPCMA, media.CodecPCMU:
		conv, err := transcode.NewToAAC(transcode.AACConfig{})
		if err != nil {
			return nil, 0, 0, err
		}
		var cfg mpeg4audio.AudioSpecificConfig
		if err := cfg.Unmarshal(conv.AudioSpecificConfig()); err != nil {
			return nil, 0, 0, fmt.Errorf("record: AudioSpecificConfig: %w", err)
		}
		m.conv = conv
		return &codecs.MPEG4Audio{Config: cfg}, cfg.SampleRate, mpeg4audio.SamplesPerAccessUnit, nil
	default:
		return nil, 0, 0, fmt.Errorf("record: MP4 recorder cannot write %v audio", a.codec)
	}
}

// Stats returns the recorder's counters.
func (m *MP4) Stats() Stats { return m.stats() }

// Close writes what is held (the transcoder's tail and the last sample of
// each track, given the duration of the one before) as the last fragment,
// syncs and closes the file. Frames still held because a configured track
// never showed up are written first (with the tracks seen); a recorder
// that got no frame at all leaves an empty file. Later calls return nil,
// and so does Close after the quota ended the recording. When the last
// fragment would go beyond the quota it is left out and Close returns
// ErrQuotaReached.
// ctx bounds the wait for the disk: when it is done first, Close returns
// its error and the file is finished (and closed) in the background.
func (m *MP4) Close(ctx context.Context) error { return m.closeCtx(ctx) }

func (m *MP4) closeLocked() []error {
	var errs []error
	if m.err == nil && m.header {
		if m.conv != nil && m.audio != nil {
			m.conv.Flush(func(out *media.Frame) {
				if m.err == nil {
					_, dts := m.st.stamp(&m.audio.guard, out)
					m.err = m.add(m.audio, out.PTS, dts, &fmp4.Sample{Payload: out.Payload}, false)
				}
			})
		}
		for _, t := range []*mp4Track{m.video, m.audio} {
			if t != nil && t.held != nil {
				t.push(t.held, t.heldDTS, t.lastDur)
				t.held = nil
			}
		}
		if m.err == nil {
			m.err = m.flushFragment()
		}
		if m.err != nil {
			errs = append(errs, m.err)
		}
	}
	if m.header {
		errs = append(errs, m.f.Sync())
	}
	return errs
}
