package record

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/at-wat/ebml-go"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink"
)

var _ sink.Sink = (*MKV)(nil)

// Matroska codec IDs. Specification: Matroska Codec Mappings
// (https://www.matroska.org/technical/codec_specs.html).
const (
	mkvCodecAVC  = "V_MPEG4/ISO/AVC"
	mkvCodecVP8  = "V_VP8"
	mkvCodecOpus = "A_OPUS"
	mkvCodecAAC  = "A_AAC"
	// G.711 has no native Matroska ID; A_MS/ACM with a WAVEFORMATEX whose
	// wFormatTag is 6 (A-law) or 7 (µ-law) is what ffmpeg writes and reads.
	mkvCodecACM = "A_MS/ACM"
)

type mkvEBMLHeader struct {
	EBMLVersion        uint64 `ebml:"EBMLVersion"`
	EBMLReadVersion    uint64 `ebml:"EBMLReadVersion"`
	EBMLMaxIDLength    uint64 `ebml:"EBMLMaxIDLength"`
	EBMLMaxSizeLength  uint64 `ebml:"EBMLMaxSizeLength"`
	DocType            string `ebml:"EBMLDocType"`
	DocTypeVersion     uint64 `ebml:"EBMLDocTypeVersion"`
	DocTypeReadVersion uint64 `ebml:"EBMLDocTypeReadVersion"`
}

type mkvInfo struct {
	TimecodeScale uint64 `ebml:"TimecodeScale"`
	MuxingApp     string `ebml:"MuxingApp"`
	WritingApp    string `ebml:"WritingApp"`
	// Void reserves room for the Duration element written by Close; a file
	// cut short keeps the Void and players compute the duration.
	Void []byte `ebml:"Void"`
}

type mkvAudio struct {
	SamplingFrequency float64 `ebml:"SamplingFrequency"`
	Channels          uint64  `ebml:"Channels"`
}

type mkvVideo struct {
	PixelWidth  uint64 `ebml:"PixelWidth"`
	PixelHeight uint64 `ebml:"PixelHeight"`
}

type mkvTrackEntry struct {
	TrackNumber  uint64    `ebml:"TrackNumber"`
	TrackUID     uint64    `ebml:"TrackUID"`
	TrackType    uint64    `ebml:"TrackType"`
	FlagLacing   uint64    `ebml:"FlagLacing"`
	CodecID      string    `ebml:"CodecID"`
	CodecPrivate []byte    `ebml:"CodecPrivate,omitempty"`
	CodecDelay   uint64    `ebml:"CodecDelay,omitempty"`
	SeekPreRoll  uint64    `ebml:"SeekPreRoll,omitempty"`
	Video        *mkvVideo `ebml:"Video,omitempty"`
	Audio        *mkvAudio `ebml:"Audio,omitempty"`
}

type mkvTracks struct {
	TrackEntry []mkvTrackEntry `ebml:"TrackEntry"`
}

type mkvCluster struct {
	Timecode    uint64       `ebml:"Timecode"`
	SimpleBlock []ebml.Block `ebml:"SimpleBlock"`
}

type mkvCueTrackPosition struct {
	CueTrack           uint64 `ebml:"CueTrack"`
	CueClusterPosition uint64 `ebml:"CueClusterPosition"`
}

type mkvCuePoint struct {
	CueTime           uint64              `ebml:"CueTime"`
	CueTrackPositions mkvCueTrackPosition `ebml:"CueTrackPositions"`
}

type mkvSeek struct {
	SeekID       []byte `ebml:"SeekID"`
	SeekPosition uint64 `ebml:"SeekPosition,size=8"`
}

// seekHeadVoidLen is the room reserved at the start of the Segment for a
// SeekHead with one Seek (to the Cues) written by Close: SeekHead ID (4),
// size (1), Seek ID (2), size (1), SeekID element (2+1+4), SeekPosition
// element (2+1+8).
const seekHeadVoidLen = 4 + 1 + 2 + 1 + 7 + 11

// mkvCuesID is the Cues element ID, as a SeekID holds it.
var mkvCuesID = []byte{0x1c, 0x53, 0xbb, 0x6b}

// Track types. Specification: RFC 9559 §5.1.4.1.3.
const (
	mkvTrackVideo = 1
	mkvTrackAudio = 2
)

// durationVoidLen is the size of the Void element reserved for Duration:
// ID 0x4489, size 0x88, an 8-byte float.
const durationVoidLen = 11

// segmentUnknownSize is an 8-byte EBML size with all value bits set: "size
// unknown", what a live stream writes. Specification: RFC 8794 §6.2.
var segmentUnknownSize = []byte{0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// MKV is a Matroska (or WebM) recorder written as a live stream: an
// unknown-size Segment whose Clusters are buffered in memory and each written
// whole, with one write, about once per Config.FlushInterval. A file cut
// short therefore ends with complete clusters (or one partly written, which
// demuxers skip) and plays without Cues. Close writes the last cluster and
// the Cues (a point per cluster starting with a keyframe), then fills in the
// room reserved in the header: a SeekHead pointing at the Cues, the Segment
// size and the Duration. The DocType is "webm" when every track is VP8 or
// Opus, "matroska" otherwise.
//
// Video: H.264 (V_MPEG4/ISO/AVC, CodecPrivate an AVCDecoderConfigurationRecord
// from the first keyframe's SPS and PPS; later SPS/PPS stay in-band) and VP8.
// Audio: PCMA and PCMU (A_MS/ACM), Opus (A_OPUS with an OpusHead) and AAC
// (A_AAC). Speex frames are ignored (no Matroska mapping players agree on).
type MKV struct {
	recorder

	header   bool
	videoNum uint64 // 0: no video track
	audioNum uint64 // 0: no audio track

	cluster      mkvCluster
	clusterStart int64 // ms
	clusterOpen  bool
	buf          bytes.Buffer

	segDataStart int64
	voidPos      int64 // Void reserved for Duration; <= 0: none
	seekVoidPos  int64 // Void reserved for the SeekHead; <= 0: none
	cues         []mkvCuePoint
	cueTrack     uint64 // video if any, else audio
	clusterKey   bool   // the open cluster starts with a keyframe of cueTrack
	endMs        int64
	flushedEndMs int64 // endMs of the clusters written
	lastVideoMs  int64 // -1 before the first video frame
	// guards keep each track's block timestamps strictly increasing,
	// indexed by track number.
	guards [3]media.DTSGuard
}

// NewMKV creates (or truncates) the file at path and returns a recorder
// writing to it. Nothing is written until the recording starts (see the
// package documentation).
func NewMKV(path string, cfg Config) (*MKV, error) {
	m := &MKV{lastVideoMs: -1}
	if err := m.open(path, cfg, m); err != nil {
		return nil, err
	}
	return m, nil
}

// WriteFrame adds f to the recording. It retains f (frames from a
// sink.Fanout are immutable) until its cluster is written. It returns the
// first write error again on every later call.
func (m *MKV) WriteFrame(f *media.Frame) error { return m.writeFrame(f) }

// atQuota finalizes the file as Close does (the cluster that did not fit
// is dropped).
func (m *MKV) atQuota() error { return m.finish() }

// cuesReserve is room kept under the quota for the Cues Close writes: the
// element's header and at most 32 bytes per cue point (with n more).
func (m *MKV) cuesReserve(n int) int64 {
	return 16 + 32*int64(len(m.cues)+n)
}

func (m *MKV) writeLocked(f *media.Frame) error {
	if !m.header {
		if err := m.writeHeader(); err != nil {
			return err
		}
	}
	num := m.audioNum
	if f.Kind() == media.KindVideo {
		num = m.videoNum
	}
	if num == 0 {
		m.st.ignored++
		return nil
	}
	// Matroska stores presentation times. SIP endpoints send no B-frames,
	// so presentation order is decoding order: the block times of a track
	// are kept strictly increasing like a DTS (see media.DTSGuard).
	ts := m.guards[num].Next(m.st.rel(f.PTS))
	video := f.Kind() == media.KindVideo
	age := ts - m.clusterStart
	flushMs := int64(m.cfg.FlushInterval.Milliseconds())
	if m.clusterOpen && (age >= flushMs || age < -30000 || age > 30000 ||
		(video && f.Keyframe && m.videoNum != 0 && age >= flushMs/4)) {
		if err := m.flushCluster(); err != nil {
			return err
		}
	}
	if !m.clusterOpen {
		m.clusterOpen = true
		m.clusterKey = num == m.cueTrack && (f.Keyframe || !video)
		m.clusterStart = ts
		m.cluster.Timecode = uint64(ts)
		m.cluster.SimpleBlock = m.cluster.SimpleBlock[:0]
	}
	m.cluster.SimpleBlock = append(m.cluster.SimpleBlock, ebml.Block{
		TrackNumber: num,
		Timecode:    int16(ts - m.clusterStart),
		Keyframe:    f.Keyframe || !video,
		Data:        [][]byte{f.Payload},
	})
	dur := int64(f.Duration.Milliseconds())
	if video {
		if m.lastVideoMs >= 0 && ts > m.lastVideoMs {
			dur = ts - m.lastVideoMs // a video frame lasts until the next
		}
		m.lastVideoMs = ts
	}
	m.endMs = max(m.endMs, ts+dur)
	m.written++
	return nil
}

func (m *MKV) flushCluster() error {
	if !m.clusterOpen {
		return nil
	}
	m.clusterOpen = false
	m.buf.Reset()
	c := struct {
		Cluster *mkvCluster `ebml:"Cluster"`
	}{&m.cluster}
	if err := ebml.Marshal(&c, &m.buf); err != nil {
		return fmt.Errorf("record: marshal cluster: %w", err)
	}
	for i := range m.cluster.SimpleBlock {
		m.cluster.SimpleBlock[i] = ebml.Block{} // release the frames
	}
	if q := m.cfg.MaxBytes; q > 0 && m.size+int64(m.buf.Len())+m.cuesReserve(1) > q {
		m.endMs = m.flushedEndMs // the Duration of what the file holds
		return ErrQuotaReached
	}
	m.flushedEndMs = m.endMs
	if m.clusterKey {
		m.cues = append(m.cues, mkvCuePoint{CueTime: m.cluster.Timecode, CueTrackPositions: mkvCueTrackPosition{
			CueTrack: m.cueTrack, CueClusterPosition: uint64(m.size - m.segDataStart)}})
	}
	return m.write(m.buf.Bytes())
}

func (m *MKV) write(b []byte) error {
	n, err := m.f.Write(b)
	m.size += int64(n)
	if err != nil {
		return fmt.Errorf("record: write: %w", err)
	}
	return m.sy.wrote()
}

// writeHeader writes the EBML header, the Segment start (unknown size),
// Info and Tracks for the tracks the starter found.
func (m *MKV) writeHeader() error {
	m.header = true
	var entries []mkvTrackEntry
	webm := true
	if v := m.st.video; v != nil {
		e, err := videoEntry(v)
		if err == nil {
			e.TrackNumber = uint64(len(entries) + 1)
			e.TrackUID = e.TrackNumber
			m.videoNum = e.TrackNumber
			entries = append(entries, e)
			webm = webm && v.codec == media.CodecVP8
		}
	}
	if a := m.st.audio; a != nil {
		e, err := m.audioEntry(a)
		if err == nil {
			e.TrackNumber = uint64(len(entries) + 1)
			e.TrackUID = e.TrackNumber
			m.audioNum = e.TrackNumber
			entries = append(entries, e)
			webm = webm && a.codec == media.CodecOpus
		}
	}
	if len(entries) == 0 {
		return errors.New("record: no track the Matroska recorder can write (unsupported codecs)")
	}
	m.cueTrack = m.videoNum
	if m.cueTrack == 0 {
		m.cueTrack = m.audioNum
	}
	docType := "matroska"
	if webm {
		docType = "webm"
	}
	var b bytes.Buffer
	hdr := struct {
		Header mkvEBMLHeader `ebml:"EBML"`
	}{mkvEBMLHeader{
		EBMLVersion: 1, EBMLReadVersion: 1, EBMLMaxIDLength: 4, EBMLMaxSizeLength: 8,
		DocType: docType, DocTypeVersion: 4, DocTypeReadVersion: 2,
	}}
	if err := ebml.Marshal(&hdr, &b); err != nil {
		return fmt.Errorf("record: marshal header: %w", err)
	}
	b.Write([]byte{0x18, 0x53, 0x80, 0x67}) // Segment ID
	b.Write(segmentUnknownSize)
	m.segDataStart = int64(b.Len())
	m.seekVoidPos = m.segDataStart
	b.Write(voidElement(seekHeadVoidLen))
	info := struct {
		Info mkvInfo `ebml:"Info"`
	}{mkvInfo{TimecodeScale: 1000000, MuxingApp: "sipstream", WritingApp: "sipstream", Void: make([]byte, durationVoidLen-2)}}
	if err := ebml.Marshal(&info, &b); err != nil {
		return fmt.Errorf("record: marshal info: %w", err)
	}
	m.voidPos = int64(b.Len()) - durationVoidLen
	if !bytes.Equal(b.Bytes()[m.voidPos:m.voidPos+2], []byte{0xec, 0x80 | (durationVoidLen - 2)}) {
		m.voidPos = -1 // unexpected encoding: leave the Void alone
	}
	tracks := struct {
		Tracks mkvTracks `ebml:"Tracks"`
	}{mkvTracks{TrackEntry: entries}}
	if err := ebml.Marshal(&tracks, &b); err != nil {
		return fmt.Errorf("record: marshal tracks: %w", err)
	}
	return m.write(b.Bytes())
}

func videoEntry(t *track) (mkvTrackEntry, error) {
	e := mkvTrackEntry{TrackType: mkvTrackVideo}
	switch t.codec {
	case media.CodecH264:
		sps, pps, err := paramSets(t.first.Payload)
		if err != nil {
			return e, err
		}
		info, err := parseSPS(sps)
		if err != nil {
			return e, err
		}
		if e.CodecPrivate, err = avcDecoderConfig(sps, pps); err != nil {
			return e, err
		}
		e.CodecID = mkvCodecAVC
		e.Video = &mkvVideo{PixelWidth: uint64(info.Width), PixelHeight: uint64(info.Height)}
	case media.CodecVP8:
		w, h, err := vp8Size(t.first.Payload)
		if err != nil {
			return e, err
		}
		e.CodecID = mkvCodecVP8
		e.Video = &mkvVideo{PixelWidth: uint64(w), PixelHeight: uint64(h)}
	default:
		return e, fmt.Errorf("record: Matroska recorder cannot write %v video", t.codec)
	}
	return e, nil
}

func (m *MKV) audioEntry(t *track) (mkvTrackEntry, error) {
	ch := max(t.channels, 1)
	rate := t.clockRate
	e := mkvTrackEntry{TrackType: mkvTrackAudio}
	switch t.codec {
	case media.CodecPCMA, media.CodecPCMU:
		if rate == 0 {
			rate = 8000
		}
		e.CodecID = mkvCodecACM
		e.CodecPrivate = waveFormatEx(t.codec == media.CodecPCMA, rate, ch)
	case media.CodecOpus:
		rate = 48000
		e.CodecID = mkvCodecOpus
		e.CodecPrivate = opusHead(ch)
		e.SeekPreRoll = 80000000 // 80 ms, as RFC 7845 §4.6 advises
	case media.CodecAAC:
		asc := m.cfg.AudioSpecificConfig
		if asc == nil {
			var err error
			if asc, err = defaultASC(rate, ch); err != nil {
				return e, err
			}
		}
		e.CodecID = mkvCodecAAC
		e.CodecPrivate = asc
	default:
		return e, fmt.Errorf("record: Matroska recorder cannot write %v audio", t.codec)
	}
	e.Audio = &mkvAudio{SamplingFrequency: float64(rate), Channels: uint64(ch)}
	return e, nil
}

// waveFormatEx builds the 18-byte WAVEFORMATEX for G.711 (wFormatTag 6 =
// WAVE_FORMAT_ALAW, 7 = WAVE_FORMAT_MULAW; 8 bits a sample).
func waveFormatEx(alaw bool, rate uint32, channels uint8) []byte {
	tag := uint16(7)
	if alaw {
		tag = 6
	}
	b := make([]byte, 0, 18)
	b = binary.LittleEndian.AppendUint16(b, tag)
	b = binary.LittleEndian.AppendUint16(b, uint16(channels))
	b = binary.LittleEndian.AppendUint32(b, rate)
	b = binary.LittleEndian.AppendUint32(b, rate*uint32(channels)) // bytes per second
	b = binary.LittleEndian.AppendUint16(b, uint16(channels))      // block align
	b = binary.LittleEndian.AppendUint16(b, 8)                     // bits per sample
	b = binary.LittleEndian.AppendUint16(b, 0)                     // cbSize
	return b
}

// opusHead builds the identification header Matroska's A_OPUS CodecPrivate
// holds: no pre-skip (RTP Opus has none to announce), 48 kHz, mapping family
// 0. Specification: RFC 7845 §5.1.
func opusHead(channels uint8) []byte {
	channels = min(channels, 2)
	b := append(make([]byte, 0, 19), "OpusHead"...)
	b = append(b, 1, channels)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 48000)
	b = binary.LittleEndian.AppendUint16(b, 0)
	return append(b, 0)
}

// Stats returns the recorder's counters.
func (m *MKV) Stats() Stats { return m.stats() }

// Close writes the last cluster, fills in the Segment size and Duration,
// and closes the file. Frames still held because a configured track never
// showed up are written first (with the tracks seen); a recorder that got no
// frame at all leaves an empty file.
// Later calls return nil, and so does Close after the quota ended the
// recording (the file is already finalized and closed). When the last
// cluster would go beyond the quota it is left out, the file finalized
// without it, and Close returns ErrQuotaReached.
// ctx bounds the wait for the disk: when it is done first, Close returns
// its error and the file is finished (and closed) in the background.
func (m *MKV) Close(ctx context.Context) error { return m.closeCtx(ctx) }

func (m *MKV) closeLocked() []error {
	var errs []error
	if m.err == nil && m.header {
		if err := m.flushCluster(); err != nil {
			m.err = err
			errs = append(errs, err)
		}
	}
	// Past the quota, the cluster that did not fit is left out and the
	// rest finalized.
	if m.header && (m.err == nil || errors.Is(m.err, ErrQuotaReached)) {
		errs = append(errs, m.finish())
	}
	return errs
}

// finish writes the Cues, patches the Segment size and turns the reserved
// Voids into a SeekHead (to the Cues) and the Duration.
func (m *MKV) finish() error {
	if err := m.writeCues(); err != nil {
		return err
	}
	var size [8]byte
	binary.BigEndian.PutUint64(size[:], uint64(m.size-m.segDataStart))
	size[0] = 0x01
	if _, err := m.f.WriteAt(size[:], m.segDataStart-8); err != nil {
		return fmt.Errorf("record: write segment size: %w", err)
	}
	if m.voidPos > 0 {
		var d [durationVoidLen]byte
		d[0], d[1], d[2] = 0x44, 0x89, 0x88
		binary.BigEndian.PutUint64(d[3:], math.Float64bits(float64(m.endMs)))
		if _, err := m.f.WriteAt(d[:], m.voidPos); err != nil {
			return fmt.Errorf("record: write duration: %w", err)
		}
	}
	return m.f.Sync()
}

// voidElement returns an EBML Void element of n bytes in all (2 <= n <= 128).
func voidElement(n int) []byte {
	b := make([]byte, n)
	b[0], b[1] = 0xec, 0x80|byte(n-2)
	return b
}

// writeCues appends the Cues (one point per cluster that starts with a
// keyframe) and points the reserved SeekHead at them, so that a finished
// recording seeks without a scan. A file cut short has neither and still
// plays.
func (m *MKV) writeCues() error {
	if len(m.cues) == 0 || m.seekVoidPos <= 0 {
		return nil
	}
	cuesPos := m.size - m.segDataStart
	var sh bytes.Buffer
	seek := struct {
		SeekHead struct {
			Seek mkvSeek `ebml:"Seek"`
		} `ebml:"SeekHead"`
	}{}
	seek.SeekHead.Seek = mkvSeek{SeekID: mkvCuesID, SeekPosition: uint64(cuesPos)}
	if err := ebml.Marshal(&seek, &sh); err != nil {
		return fmt.Errorf("record: marshal seek head: %w", err)
	}
	if sh.Len() != seekHeadVoidLen {
		return nil // unexpected encoding: keep the Void, skip the Cues
	}
	m.buf.Reset()
	cues := struct {
		Cues struct {
			CuePoint []mkvCuePoint `ebml:"CuePoint"`
		} `ebml:"Cues"`
	}{}
	cues.Cues.CuePoint = m.cues
	if err := ebml.Marshal(&cues, &m.buf); err != nil {
		return fmt.Errorf("record: marshal cues: %w", err)
	}
	if err := m.write(m.buf.Bytes()); err != nil {
		return err
	}
	if _, err := m.f.WriteAt(sh.Bytes(), m.seekVoidPos); err != nil {
		return fmt.Errorf("record: write seek head: %w", err)
	}
	return nil
}
