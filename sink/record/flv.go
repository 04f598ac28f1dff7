package record

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/rtmp/flv"
	"github.com/sipstream/sipstream/sink"
)

var _ sink.Sink = (*FLV)(nil)

// FLV is an FLV recorder. FLV is a stream format (no index needed), so a file
// cut short plays up to its last complete tag; tags are built in memory and
// written with one write about once per Config.FlushInterval, so a kill loses
// at most that much.
//
// Video: H.264 (an AVC sequence header before the first keyframe, again
// whenever a keyframe brings a different SPS or PPS). Audio: AAC (sequence
// header from Config.AudioSpecificConfig), G.711 A-law and µ-law (8 kHz
// mono), Speex (16 kHz only, as FLV defines it). VP8 and Opus have no place
// in classic FLV (players such as ffmpeg 5 read no Enhanced-RTMP FLV): such
// a track is left out of the file and its frames are counted as ignored.
type FLV struct {
	recorder

	header   bool
	hasVideo bool
	hasAudio bool
	sps, pps []byte // last sent in a sequence header
	// vguard and aguard keep each track's tag timestamps strictly
	// increasing.
	vguard, aguard media.DTSGuard

	buf       bytes.Buffer // tags not yet written
	w         *flv.Writer  // writes into buf
	flushedAt int64        // ms of the last flush
	scratch   []byte
}

// NewFLV creates (or truncates) the file at path and returns a recorder
// writing FLV to it. Nothing is written until the recording starts (see the
// package documentation).
func NewFLV(path string, cfg Config) (*FLV, error) {
	r := &FLV{}
	if err := r.open(path, cfg, r); err != nil {
		return nil, err
	}
	return r, nil
}

// WriteFrame adds f to the recording. It retains f only while the recording
// waits to start (frames from a sink.Fanout are immutable). It returns the
// first write error again on every later call.
func (r *FLV) WriteFrame(f *media.Frame) error { return r.writeFrame(f) }

// atQuota: an FLV file needs no trailer, what was written plays.
func (r *FLV) atQuota() error { return r.f.Sync() }

func (r *FLV) writeLocked(f *media.Frame) error {
	if !r.header {
		if err := r.writeHeader(); err != nil {
			return err
		}
	}
	video := f.Kind() == media.KindVideo
	if (video && !r.hasVideo) || (!video && !r.hasAudio) {
		r.st.ignored++
		return nil
	}
	g := &r.aguard
	if video {
		g = &r.vguard
	}
	pts, dts := r.st.stamp(g, f)
	if video {
		if f.Keyframe {
			sps, pps, err := paramSets(f.Payload)
			if err == nil && (!bytes.Equal(sps, r.sps) || !bytes.Equal(pps, r.pps)) {
				if err := r.avcHeader(sps, pps, dts); err != nil {
					return err
				}
			}
		}
		cts := int32(pts - dts)
		r.scratch = flv.AppendAVCFrame(r.scratch[:0], f.Keyframe, cts, f.Payload)
	} else {
		switch f.Codec {
		case media.CodecAAC:
			r.scratch = flv.AppendAACFrame(r.scratch[:0], f.Payload)
		case media.CodecPCMA, media.CodecPCMU:
			r.scratch = flv.AppendG711Frame(r.scratch[:0], f.Codec == media.CodecPCMA, f.Payload)
		case media.CodecSpeex:
			r.scratch = flv.AppendSpeexFrame(r.scratch[:0], f.Payload)
		}
	}
	typ := uint8(flv.TagAudio)
	if video {
		typ = flv.TagVideo
	}
	if err := r.w.WriteTag(flv.Tag{Type: typ, Timestamp: uint32(dts), Data: r.scratch}); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	r.written++
	if dts-r.flushedAt >= r.cfg.FlushInterval.Milliseconds() {
		r.flushedAt = dts
		return r.flush()
	}
	return nil
}

func (r *FLV) avcHeader(sps, pps []byte, dts int64) error {
	body, err := flv.AVCSequenceHeader(sps, pps)
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	r.sps = append(r.sps[:0], sps...)
	r.pps = append(r.pps[:0], pps...)
	if err := r.w.WriteTag(flv.Tag{Type: flv.TagVideo, Timestamp: uint32(dts), Data: body}); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	return nil
}

// flush writes the buffered tags with one write, or none of them when
// that would take the file beyond Config.MaxBytes (ErrQuotaReached).
func (r *FLV) flush() error {
	if r.buf.Len() == 0 {
		return nil
	}
	if q := r.cfg.MaxBytes; q > 0 && r.size+int64(r.buf.Len()) > q {
		r.buf.Reset()
		return ErrQuotaReached
	}
	n, err := r.f.Write(r.buf.Bytes())
	r.size += int64(n)
	r.buf.Reset()
	if err != nil {
		return fmt.Errorf("record: write: %w", err)
	}
	return r.sy.wrote()
}

func (r *FLV) writeHeader() error {
	r.header = true
	md := flv.Metadata{Encoder: "sipstream"}
	if v := r.st.video; v != nil && v.codec == media.CodecH264 {
		if sps, _, err := paramSets(v.first.Payload); err == nil {
			if info, err := parseSPS(sps); err == nil {
				md.Width, md.Height = info.Width, info.Height
			}
			r.hasVideo = true
			md.VideoCodecID = flv.CodecAVC
		}
	}
	var asc []byte
	if a := r.st.audio; a != nil {
		ch := max(a.channels, 1)
		switch {
		case a.codec == media.CodecAAC:
			asc = r.cfg.AudioSpecificConfig
			if asc == nil {
				var err error
				if asc, err = defaultASC(a.clockRate, ch); err != nil {
					break
				}
			}
			r.hasAudio = true
			md.AudioCodecID = flv.SoundAAC
			md.AudioSampleRate, md.AudioSampleSize, md.Stereo = int(a.clockRate), 16, ch > 1
		case (a.codec == media.CodecPCMA || a.codec == media.CodecPCMU) && (a.clockRate == 8000 || a.clockRate == 0) && ch == 1:
			r.hasAudio = true
			md.AudioCodecID = flv.SoundG711MuLaw
			if a.codec == media.CodecPCMA {
				md.AudioCodecID = flv.SoundG711ALaw
			}
			md.AudioSampleRate, md.AudioSampleSize = 8000, 16
		case a.codec == media.CodecSpeex && a.clockRate == 16000 && ch == 1:
			r.hasAudio = true
			md.AudioCodecID = flv.SoundSpeex
			md.AudioSampleRate, md.AudioSampleSize = 16000, 16
		}
	}
	if !r.hasAudio && !r.hasVideo {
		return errors.New("record: no track the FLV recorder can write (unsupported codecs)")
	}
	w, err := flv.NewWriter(&r.buf, r.hasAudio, r.hasVideo)
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	r.w = w
	if err := w.WriteTag(flv.Tag{Type: flv.TagScript, Data: flv.OnMetaData(md)}); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	if asc != nil {
		if err := w.WriteTag(flv.Tag{Type: flv.TagAudio, Data: flv.AACSequenceHeader(asc)}); err != nil {
			return fmt.Errorf("record: %w", err)
		}
	}
	return nil
}

// Stats returns the recorder's counters.
func (r *FLV) Stats() Stats { return r.stats() }

// Close writes the buffered tags and closes the file. Frames still held
// because a configured track never showed up are written first (with the
// tracks seen). Later calls return nil, and so does Close after the quota
// ended the recording (the file is already closed). When the buffered
// tags would go beyond the quota they are left out and Close returns
// ErrQuotaReached (the file is still synced and closed).
// ctx bounds the wait for the disk: when it is done first, Close returns
// its error and the file is finished (and closed) in the background.
func (r *FLV) Close(ctx context.Context) error { return r.closeCtx(ctx) }

func (r *FLV) closeLocked() []error {
	var errs []error
	if r.err == nil {
		if err := r.flush(); err != nil {
			r.err = err
			errs = append(errs, err)
		}
	}
	if r.err == nil || errors.Is(r.err, ErrQuotaReached) {
		errs = append(errs, r.f.Sync())
	}
	return errs
}
