package rtmp

import (
	"bytes"
	"fmt"
	"time"

	"github.com/sipstream/sipstream/media/rtph264"
	"github.com/sipstream/sipstream/rtmp/flv"
)

// send writes one media or data message; the caller holds mu.
func (c *Client) send(csid byte, typ uint8, ts uint32, payload []byte) error {
	return c.sendHead(csid, typ, ts, nil, payload)
}

// sendHead writes one message whose body is head followed by payload; the
// caller holds mu.
func (c *Client) sendHead(csid byte, typ uint8, ts uint32, head, payload []byte) error {
	c.msg = message{ChunkStreamID: csid, Type: typ, Timestamp: ts, StreamID: c.streamID, Payload: payload}
	c.conn.wmu.Lock()
	err := c.conn.writeHeadLocked(&c.msg, head)
	c.conn.wmu.Unlock()
	c.msg.Payload = nil
	if err != nil {
		err = &PublishError{Stage: "stream", Err: err}
		c.fail(err)
		return c.usable()
	}
	c.bytes.Add(uint64(len(head) + len(payload)))
	return nil
}

// Hold makes the writes that follow wait in memory, encoded, until Flush,
// so that several frames that are ready together (a sink's queue drained at
// once) reach the connection in one write: one system call, and over TLS
// one run of records, instead of one per frame. Nothing is written in the
// meantime, so call Flush as soon as the frames at hand are written; a
// frame must never wait for one that has not arrived. Messages the Client
// sends by itself meanwhile (acknowledgements, ping replies) join the
// held ones. At most about 16 KiB are held: a message that would go
// beyond sends what is held first, so that a batch costs no buffer larger
// than the one kept between writes. Write errors surface at Flush, or at
// the write that sent the held messages.
func (c *Client) Hold() {
	c.conn.wmu.Lock()
	c.conn.hold = true
	c.conn.wmu.Unlock()
}

// Flush writes what was held since Hold, with WriteTimeout as deadline,
// and ends the hold. A write failure fails the Client as a media write's
// does.
func (c *Client) Flush() error {
	c.conn.wmu.Lock()
	c.conn.hold = false
	err := c.conn.flushLocked()
	c.conn.wmu.Unlock()
	if err != nil {
		c.fail(&PublishError{Stage: "stream", Err: err})
	}
	return c.usable()
}

// WriteMetadata sends @setDataFrame onMetaData. Send it before the media.
func (c *Client) WriteMetadata(md flv.Metadata) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	return c.send(csidData, typeDataAMF0, 0, flv.SetDataFrame(md))
}

// WriteAVCConfig sends an AVC sequence header for sps and pps (NAL units
// without prefix), for streams whose keyframes do not carry them in band
// (the SDP's sprop-parameter-sets). Nothing is sent if they did not change.
func (c *Client) WriteAVCConfig(sps, pps []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	return c.avcConfig(0, sps, pps)
}

func (c *Client) avcConfig(ts uint32, sps, pps []byte) error {
	if c.videoConfig && bytes.Equal(sps, c.sps) && bytes.Equal(pps, c.pps) {
		return nil
	}
	seq, err := flv.AVCSequenceHeader(sps, pps)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	if err := c.send(csidVideo, typeVideo, ts, seq); err != nil {
		return err
	}
	c.sps = append(c.sps[:0], sps...)
	c.pps = append(c.pps[:0], pps...)
	c.videoConfig = true
	return nil
}

// WriteH264 sends one H.264 access unit in AVC format (4-byte
// length-prefixed NAL units, media.Frame's H.264 payload). pts and dts are
// on the stream's timeline; RTMP carries dts in milliseconds and pts-dts
// as the composition time. When a keyframe carries an SPS and a PPS that
// differ from the last ones sent, a new AVC sequence header goes out first.
// Frames before the first keyframe with known parameter sets are dropped
// (counted in Stats) since no decoder could use them. avcc is not retained.
//
// Message timestamps are strictly increasing per track (video, audio)
// whatever the caller passes: a dts that is not after the previous frame's
// at millisecond resolution (a duplicate, a late frame, two frames within
// one millisecond) is sent one millisecond after it, later frames keep
// their own time once they are ahead again (media.DTSGuard); negative times
// count as zero, and the composition time is never negative.
func (c *Client) WriteH264(pts, dts time.Duration, avcc []byte, keyframe bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if keyframe {
		c.found = rtph264.ParamSets{}
		if err := rtph264.ForEachAVC(avcc, c.findParamSets); err != nil {
			c.found = rtph264.ParamSets{}
			return fmt.Errorf("%w: H.264 access unit: %w", ErrBadFrame, err)
		}
	}
	newConfig := c.found.SPS != nil && c.found.PPS != nil
	if !c.videoConfig && !newConfig || !c.videoStarted && !keyframe {
		c.found = rtph264.ParamSets{}
		c.videoDropped.Add(1)
		return nil
	}
	p, d := c.vguard.Stamp(max(pts, 0), max(dts, 0))
	ts := uint32(d) // wraps after 49.7 days, as RTMP time does
	if newConfig {
		err := c.avcConfig(ts, c.found.SPS, c.found.PPS)
		c.found = rtph264.ParamSets{}
		if err != nil {
			return err
		}
	}
	c.videoStarted = true
	// The tag is the 5-byte header and the frame, which the chunk writer
	// copies once from where it is.
	c.vhead = flv.AppendAVCFrame(c.vhead[:0], keyframe, int32(p-d), nil)
	if err := c.sendHead(csidVideo, typeVideo, ts, c.vhead, avcc); err != nil {
		return err
	}
	c.videoFrames.Add(1)
	return nil
}

func (c *Client) findParamSets(n []byte) bool {
	c.found.Add(n)
	return true
}

// WriteAACConfig sends the AAC sequence header (AudioSpecificConfig). It
// must come before WriteAAC; sending a different one later re-sends it.
func (c *Client) WriteAACConfig(asc []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if c.aacConfigured && bytes.Equal(asc, c.aacConfig) {
		return nil
	}
	if err := c.send(csidAudio, typeAudio, 0, flv.AACSequenceHeader(asc)); err != nil {
		return err
	}
	c.aacConfig = append(c.aacConfig[:0], asc...)
	c.aacConfigured = true
	return nil
}

// WriteAAC sends one raw AAC access unit (no ADTS header) presented at pts.
func (c *Client) WriteAAC(pts time.Duration, au []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if !c.aacConfigured {
		return ErrNoConfig
	}
	c.abuf = flv.AppendAACFrame(c.abuf[:0], au)
	return c.sendAudio(pts)
}

// sendAudio sends c.abuf at pts, strictly after the previous audio
// message (see WriteH264).
func (c *Client) sendAudio(pts time.Duration) error {
	ts := uint32(c.aguard.Next(max(pts, 0)))
	if err := c.send(csidAudio, typeAudio, ts, c.abuf); err != nil {
		return err
	}
	c.audioFrames.Add(1)
	return nil
}

// WriteG711 sends G.711 samples (8 kHz mono; A-law if alaw, µ-law
// otherwise) presented at pts. nginx-rtmp, Wowza and FFmpeg accept it;
// YouTube, Facebook and Twitch do not (send AAC there).
func (c *Client) WriteG711(pts time.Duration, alaw bool, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	c.abuf = flv.AppendG711Frame(c.abuf[:0], alaw, payload)
	return c.sendAudio(pts)
}

// WriteSpeex sends one Speex packet (16 kHz wideband, the only rate FLV
// allows) presented at pts.
func (c *Client) WriteSpeex(pts time.Duration, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	c.abuf = flv.AppendSpeexFrame(c.abuf[:0], payload)
	return c.sendAudio(pts)
}

// WriteTag sends a ready FLV tag body (audio, video or script data) as it
// is, for relaying. Script tags go out as data messages unchanged; audio and
// video tags other than sequence headers get a timestamp strictly after the
// previous one of their track, as WriteH264 does (the body, and with it a
// video tag's composition time, is not changed).
func (c *Client) WriteTag(t flv.Tag) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	ts := time.Duration(t.Timestamp) * time.Millisecond
	switch t.Type {
	case flv.TagAudio:
		if a, err := flv.ParseAudio(t.Data); err == nil && !a.SequenceHeader() {
			t.Timestamp = uint32(c.aguard.Next(ts))
		}
		return c.send(csidAudio, typeAudio, t.Timestamp, t.Data)
	case flv.TagVideo:
		if v, err := flv.ParseVideo(t.Data); err == nil && !v.SequenceHeader() {
			t.Timestamp = uint32(c.vguard.Next(ts))
		}
		return c.send(csidVideo, typeVideo, t.Timestamp, t.Data)
	case flv.TagScript:
		return c.send(csidData, typeDataAMF0, t.Timestamp, t.Data)
	}
	return fmt.Errorf("rtmp: tag type %d", t.Type)
}

// WriteHEVCConfig sends an Enhanced RTMP HEVC sequence start with an
// HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1). Check
// ServerSupports("hvc1") first: classic servers drop or reject it.
func (c *Client) WriteHEVCConfig(hvcc []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if err := c.send(csidVideo, typeVideo, 0, flv.HEVCSequenceHeader(hvcc)); err != nil {
		return err
	}
	c.hevcConfigured = true
	return nil
}

// WriteHEVC sends one HEVC access unit (4-byte length-prefixed NAL units)
// as Enhanced RTMP coded frames, after WriteHEVCConfig. Timestamps are kept
// strictly increasing as WriteH264 does.
func (c *Client) WriteHEVC(pts, dts time.Duration, nalus []byte, keyframe bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if !c.hevcConfigured {
		return ErrNoConfig
	}
	p, d := c.vguard.Stamp(max(pts, 0), max(dts, 0))
	c.vhead = flv.AppendHEVCFrame(c.vhead[:0], keyframe, int32(p-d), nil)
	if err := c.sendHead(csidVideo, typeVideo, uint32(d), c.vhead, nalus); err != nil {
		return err
	}
	c.videoFrames.Add(1)
	return nil
}

// WriteOpusConfig sends an Enhanced RTMP v2 Opus sequence start carrying
// the identification header ("OpusHead", RFC 7845 section 5.1). Check
// ServerSupports("Opus") first.
func (c *Client) WriteOpusConfig(opusHead []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if err := c.send(csidAudio, typeAudio, 0, flv.OpusSequenceHeader(opusHead)); err != nil {
		return err
	}
	c.opusConfigured = true
	return nil
}

// WriteOpus sends one Opus packet presented at pts, after WriteOpusConfig.
func (c *Client) WriteOpus(pts time.Duration, packet []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if !c.opusConfigured {
		return ErrNoConfig
	}
	c.abuf = flv.AppendOpusFrame(c.abuf[:0], packet)
	return c.sendAudio(pts)
}
