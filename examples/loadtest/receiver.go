package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"math"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipstream/sipstream/rtmp"
	"github.com/sipstream/sipstream/rtmp/flv"
)

// lateAfter is the latency above which a frame counts as late.
const lateAfter = 100 * time.Millisecond

// receiver is the embedded RTMP server: it accepts every publication and
// measures each stream against the sender's send times (same process,
// same clock).
type receiver struct {
	srv    *rtmp.Server
	ln     net.Listener
	snd    *sender
	ctx    context.Context
	cancel context.CancelFunc

	measuring atomic.Bool
	mu        sync.Mutex
	streams   map[string]*recvStream
	sampled   int    // streams of this round whose audio is kept (avTrack)
	record    string // FLV file for the round's next stream; "" none
	// phaseStart is when the current phase began (sender clock, ns).
	phaseStart int64
	wg         sync.WaitGroup
}

// recvStream is one published stream's measurements.
type recvStream struct {
	mu         sync.Mutex
	call       *sendCall // from the first marker
	video      int64     // video frames (since round / since measuring)
	audio      int64
	unmarked   int64 // video frames without a marker
	baseV      float64
	haveBase   bool
	lastKey    int64 // RTMP timestamp of the last keyframe, -1 before
	lastFrame  int64 // arrival of the last picture (sender clock, ns), 0 before
	maxGap     int64 // longest time between two pictures' arrival in the window, ns
	keyInts    []float64
	lat        []float64 // video latency, ms
	audioLat   []float64 // audio latency implied by the video's RTP->RTMP mapping, ms
	late       int64
	firstFrame bool
	av         *avTrack // for the A/V sync measurement; nil when not sampled
	ph         phaseStream
}

// phaseStream is one stream's continuity since the last phase mark
// (receiver.phase), counted whether measuring or not.
type phaseStream struct {
	video, audio int64
	skipped      int64 // pictures missing between two received ones (marker frame numbers)
	lastNo       int64 // frame number of the last picture, -1 before
	lastVideo    int64 // arrival of the last picture (sender clock, ns), 0 before
	lastAudio    int64 // arrival of the last audio tag (sender clock, ns), 0 before
	maxVGap      int64 // ns
	maxAGap      int64 // ns
}

// newReceiver starts the RTMP server on addr (host:port; "": a free
// loopback port).
func newReceiver(snd *sender, addr string) (*receiver, error) {
	r := &receiver{snd: snd, streams: map[string]*recvStream{}}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	srv, err := rtmp.NewServer(rtmp.ServerConfig{OnPublish: r.onPublish, PlayerQueue: 4096})
	if err != nil {
		return nil, err
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return nil, err
	}
	r.srv, r.ln = srv, ln
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		_ = srv.Serve(ln)
	}()
	return r, nil
}

func (r *receiver) addr() string { return r.ln.Addr().String() }

func (r *receiver) close() {
	r.cancel()
	_ = r.srv.Close()
	r.wg.Wait()
}

// onPublish subscribes to every publication before it starts.
func (r *receiver) onPublish(info rtmp.StreamInfo) error {
	sub := r.srv.Subscribe(info.App, info.Name, 4096)
	rs := &recvStream{lastKey: -1, ph: phaseStream{lastNo: -1}}
	r.mu.Lock()
	if r.sampled < avSampleStreams {
		rs.av = &avTrack{}
		r.sampled++
	}
	r.streams[info.Key()] = rs
	record := r.record
	r.record = ""
	r.mu.Unlock()
	var rec *flvRecorder
	if record != "" {
		var err error
		if rec, err = newFLVRecorder(record); err != nil {
			sub.Close()
			return err
		}
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer sub.Close()
		defer rec.close()
		for {
			t, err := sub.ReadTag(r.ctx)
			if err != nil {
				return
			}
			rec.write(t)
			rs.onTag(r, t, r.snd.now())
		}
	}()
	return nil
}

// flvRecorder writes one stream's tags, as received, to an FLV file. A
// nil recorder records nothing.
type flvRecorder struct {
	f   *os.File
	buf *bufio.Writer
	w   *flv.Writer
	err error
}

func newFLVRecorder(path string) (*flvRecorder, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	buf := bufio.NewWriterSize(f, 256<<10)
	w, err := flv.NewWriter(buf, true, true)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &flvRecorder{f: f, buf: buf, w: w}, nil
}

func (rec *flvRecorder) write(t flv.Tag) {
	if rec != nil && rec.err == nil {
		rec.err = rec.w.WriteTag(t)
	}
}

func (rec *flvRecorder) close() {
	if rec == nil {
		return
	}
	_ = rec.buf.Flush()
	_ = rec.f.Close()
}

// reset forgets the streams of the previous round; record (when not
// empty) is where to write the next stream published.
func (r *receiver) reset(record string) {
	r.measuring.Store(false)
	r.mu.Lock()
	r.streams = map[string]*recvStream{}
	r.sampled = 0
	r.record = record
	r.phaseStart = r.snd.now()
	r.mu.Unlock()
}

// startMeasure clears every stream's counters and samples: what stats
// returns from now on is the steady window.
func (r *receiver) startMeasure() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range r.streams {
		rs.mu.Lock()
		rs.video, rs.audio, rs.unmarked, rs.late, rs.maxGap = 0, 0, 0, 0, 0
		rs.lat, rs.audioLat, rs.keyInts = rs.lat[:0], rs.audioLat[:0], rs.keyInts[:0]
		if rs.av != nil {
			rs.av.audio, rs.av.pics, rs.av.frames = nil, nil, nil
		}
		rs.mu.Unlock()
	}
	r.measuring.Store(true)
}

// onTag measures one tag received at now (sender clock, ns).
func (rs *recvStream) onTag(r *receiver, t flv.Tag, now int64) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	measuring := r.measuring.Load()
	switch t.Type {
	case flv.TagVideo:
		d := t.Data
		if len(d) < 5 || d[0]&0x0f != 7 || d[1] != 1 {
			return // not an AVC picture (sequence header, end of sequence)
		}
		rs.video++
		rs.ph.video++
		if rs.lastFrame != 0 {
			if measuring {
				rs.maxGap = max(rs.maxGap, now-rs.lastFrame)
			}
		}
		if rs.ph.lastVideo != 0 {
			rs.ph.maxVGap = max(rs.ph.maxVGap, now-rs.ph.lastVideo)
		}
		rs.ph.lastVideo = now
		rs.lastFrame = now
		if d[0]>>4 == 1 {
			if rs.lastKey >= 0 && measuring {
				rs.keyInts = append(rs.keyInts, float64(int64(t.Timestamp)-rs.lastKey))
			}
			rs.lastKey = int64(t.Timestamp)
		}
		idx, frame, ok := findMarker(d[5:])
		if !ok {
			rs.unmarked++
			return
		}
		if rs.call == nil || rs.call.idx != idx {
			rs.call = r.snd.lookup(idx)
		}
		if rs.call == nil {
			rs.unmarked++
			return
		}
		if rs.ph.lastNo >= 0 && frame > rs.ph.lastNo+1 {
			rs.ph.skipped += frame - rs.ph.lastNo - 1
		}
		rs.ph.lastNo = frame
		rs.baseV = float64(t.Timestamp) - float64(frame*frameDuration)/1e6
		rs.haveBase = true
		if rs.av != nil && measuring && frame%videoMarkEvery == 0 {
			cts := int32(uint32(d[2])<<16|uint32(d[3])<<8|uint32(d[4])) << 8 >> 8 // signed 24 bits
			rs.av.pics = append(rs.av.pics, float64(t.Timestamp)+float64(cts))
			rs.av.frames = append(rs.av.frames, frame)
		}
		sent, ok := rs.call.sentAt(frame)
		if !ok || !measuring {
			return
		}
		lat := float64(now-sent) / 1e6
		rs.lat = append(rs.lat, lat)
		if lat > float64(lateAfter)/1e6 {
			rs.late++
		}
	case flv.TagAudio:
		d := t.Data
		if len(d) < 2 {
			return
		}
		if d[0]>>4 == 10 && d[1] == 0 { // AAC sequence header
			if rs.av != nil {
				rs.av.asc = append([]byte(nil), d[2:]...)
			}
			return
		}
		rs.audio++
		rs.ph.audio++
		if rs.ph.lastAudio != 0 {
			rs.ph.maxAGap = max(rs.ph.maxAGap, now-rs.ph.lastAudio)
		}
		rs.ph.lastAudio = now
		if av := rs.av; av != nil && measuring && len(av.audio) < avMaxAudioTags {
			av.codec = d[0] >> 4
			payload := d[1:]
			if av.codec == 10 {
				payload = d[2:]
			}
			av.audio = append(av.audio, audioTag{ts: float64(t.Timestamp), data: append([]byte(nil), payload...)})
		}
		if !measuring || !rs.haveBase || rs.call == nil {
			return
		}
		media := float64(t.Timestamp) - rs.baseV // ms of media time
		sent := float64(rs.call.start)/1e6 + media
		rs.audioLat = append(rs.audioLat, float64(now)/1e6-sent)
	}
}

// phaseStats is the continuity of the round's streams between two phase
// marks: how the live calls fared during a stretch of time (such as an
// INVITE flood) compared with another.
type phaseStats struct {
	DurationS      float64 `json:"duration_s"`
	Streams        int     `json:"streams"`
	MinVideoFrames int64   `json:"min_video_frames"` // of the least served stream
	MinAudioFrames int64   `json:"min_audio_frames"`
	// MinVideoFPS is the least served stream's pictures per second (25
	// when none was lost).
	MinVideoFPS float64 `json:"min_video_fps"`
	// SkippedFrames counts the pictures that never arrived between two
	// that did (frame numbers of the marker SEI), over all streams;
	// StreamsSkipping how many streams lost any.
	SkippedFrames   int64 `json:"skipped_frames"`
	StreamsSkipping int   `json:"streams_skipping"`
	// MaxVideoGapMs and MaxAudioGapMs are the longest time between two
	// arrivals on one stream (40 ms and about 21 ms when all is well),
	// counting the time from the last arrival to the phase's end.
	MaxVideoGapMs float64 `json:"max_video_gap_ms"`
	MaxAudioGapMs float64 `json:"max_audio_gap_ms"`
}

// phase returns the streams' continuity since the previous phase mark (or
// since their publication) and starts a new phase.
func (r *receiver) phase() phaseStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.snd.now()
	st := phaseStats{DurationS: float64(now-r.phaseStart) / 1e9, MinVideoFrames: -1, MinAudioFrames: -1}
	for _, rs := range r.streams {
		rs.mu.Lock()
		p := &rs.ph
		st.Streams++
		vgap, agap := p.maxVGap, p.maxAGap
		if p.lastVideo != 0 {
			vgap = max(vgap, now-p.lastVideo)
		}
		if p.lastAudio != 0 {
			agap = max(agap, now-p.lastAudio)
		}
		st.MaxVideoGapMs = math.Max(st.MaxVideoGapMs, float64(vgap)/1e6)
		st.MaxAudioGapMs = math.Max(st.MaxAudioGapMs, float64(agap)/1e6)
		if st.MinVideoFrames < 0 || p.video < st.MinVideoFrames {
			st.MinVideoFrames = p.video
		}
		if st.MinAudioFrames < 0 || p.audio < st.MinAudioFrames {
			st.MinAudioFrames = p.audio
		}
		st.SkippedFrames += p.skipped
		if p.skipped > 0 {
			st.StreamsSkipping++
		}
		// The next phase's gaps count from now.
		p.video, p.audio, p.skipped, p.maxVGap, p.maxAGap = 0, 0, 0, 0, 0
		if p.lastVideo != 0 {
			p.lastVideo = now
		}
		if p.lastAudio != 0 {
			p.lastAudio = now
		}
		rs.mu.Unlock()
	}
	st.MinVideoFrames, st.MinAudioFrames = max(st.MinVideoFrames, 0), max(st.MinAudioFrames, 0)
	if st.DurationS > 0 {
		st.MinVideoFPS = float64(st.MinVideoFrames) / st.DurationS
	}
	r.phaseStart = now
	return st
}

// findMarker looks for the marker SEI among the AVCC (4-byte length) NAL
// units of a picture.
func findMarker(b []byte) (call int, frame int64, ok bool) {
	for len(b) >= 4 {
		n := int(binary.BigEndian.Uint32(b))
		b = b[4:]
		if n <= 0 || n > len(b) {
			return 0, 0, false
		}
		if c, f, ok := parseMarker(b[:n]); ok {
			return c, f, true
		}
		b = b[n:]
	}
	return 0, 0, false
}

// dist summarises samples.
type dist struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
	Min    float64 `json:"min"`
}

func summarize(v []float64) dist {
	if len(v) == 0 {
		return dist{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	q := func(p float64) float64 { return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)] }
	return dist{N: len(s), Median: q(0.5), P99: q(0.99), Max: s[len(s)-1], Min: s[0]}
}

// recvStats is what the receiver reports for a round's steady window.
type recvStats struct {
	Streams         int   `json:"streams"`           // publications seen this round
	StreamsReceived int   `json:"streams_receiving"` // with video frames in the window
	VideoFrames     int64 `json:"video_frames"`
	AudioFrames     int64 `json:"audio_frames"`
	MinVideoFrames  int64 `json:"min_video_frames"` // of the least served stream
	MinAudioFrames  int64 `json:"min_audio_frames"`
	Unmarked        int64 `json:"unmarked_frames"`
	Latency         dist  `json:"latency_ms"`
	Late            int64 `json:"late_frames"`
	AudioLatency    dist  `json:"audio_latency_ms"`
	// AudioExtraLatency is the median over streams of (audio latency -
	// video latency), the audio's latency computed through the video's
	// timestamps: how much longer audio takes through the gateway (the
	// AAC encoder's framing and look-ahead). Not an A/V sync error: see
	// AVSync.
	AudioExtraLatency    float64 `json:"audio_extra_latency_ms"`
	AudioExtraLatencyMax float64 `json:"audio_extra_latency_max_ms"` // largest |value| of one stream
	// AVSync is the A/V sync as a player shows it, measured with audio
	// markers on the first avSampleStreams streams (nil: none sampled).
	AVSync      *avSync `json:"av_sync_ms,omitempty"`
	KeyInterval dist    `json:"keyframe_interval_ms"`
	// MaxFrameGap is the longest time between two pictures' arrival of
	// any stream in the window (40 ms when every picture arrives on
	// time): a stream that stalled shows here.
	MaxFrameGap     float64 `json:"max_frame_gap_ms"`
	SenderDatagrams uint64  `json:"sender_datagrams"`
	SenderErrors    uint64  `json:"sender_errors"`
	SendingCalls    int64   `json:"sending_calls"`
}

// stats reports the window since startMeasure (or since the round began
// for the frame counts, when not measuring).
func (r *receiver) stats() recvStats {
	r.mu.Lock()
	var st recvStats
	var lat, alat, keys, offsets []float64
	var tracks []*avTrack
	measuring := r.measuring.Load()
	st.MinVideoFrames, st.MinAudioFrames = -1, -1
	for _, rs := range r.streams {
		rs.mu.Lock()
		st.Streams++
		if rs.video > 0 {
			st.StreamsReceived++
		}
		st.VideoFrames += rs.video
		st.AudioFrames += rs.audio
		st.Unmarked += rs.unmarked
		st.Late += rs.late
		st.MaxFrameGap = math.Max(st.MaxFrameGap, float64(rs.maxGap)/1e6)
		if st.MinVideoFrames < 0 || rs.video < st.MinVideoFrames {
			st.MinVideoFrames = rs.video
		}
		if st.MinAudioFrames < 0 || rs.audio < st.MinAudioFrames {
			st.MinAudioFrames = rs.audio
		}
		lat = append(lat, rs.lat...)
		alat = append(alat, rs.audioLat...)
		keys = append(keys, rs.keyInts...)
		if len(rs.lat) > 0 && len(rs.audioLat) > 0 {
			off := summarize(rs.audioLat).Median - summarize(rs.lat).Median
			offsets = append(offsets, off)
			st.AudioExtraLatencyMax = math.Max(st.AudioExtraLatencyMax, math.Abs(off))
		}
		if av := rs.av; av != nil && measuring && len(av.audio) > 0 {
			// A copy of the slice headers: the tags are appended to, never
			// changed, so they can be decoded without the lock.
			tracks = append(tracks, &avTrack{codec: av.codec, asc: av.asc, audio: av.audio, pics: av.pics, frames: av.frames})
		}
		rs.mu.Unlock()
	}
	st.MinVideoFrames, st.MinAudioFrames = max(st.MinVideoFrames, 0), max(st.MinAudioFrames, 0)
	st.Latency, st.AudioLatency, st.KeyInterval = summarize(lat), summarize(alat), summarize(keys)
	st.AudioExtraLatency = summarize(offsets).Median
	st.SenderDatagrams, st.SenderErrors = r.snd.stats()
	st.SendingCalls = r.snd.active.Load()
	r.mu.Unlock()
	// Decoding happens here, after the window, on the control goroutine:
	// not while the CPU figures are taken.
	st.AVSync = measureSync(tracks)
	return st
}
