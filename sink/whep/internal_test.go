package whep

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/webrtc/v4"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtph264"
)

func h264Frame(i int) media.Frame {
	au := testmedia.ClipAccessUnits()[i]
	pts := time.Duration(i) * 40 * time.Millisecond
	return media.Frame{Codec: media.CodecH264, PTS: pts, DTS: pts, Keyframe: au.Keyframe,
		Payload: rtph264.JoinAVC(au.NALUs), ClockRate: 90000}
}

// A viewer that never drains its queue costs WriteFrame nothing: frames are
// dropped for it, counted, and it is marked to wait for a keyframe.
func TestSlowViewerNeverBlocksWriteFrame(t *testing.T) {
	s, err := New(Config{Video: media.CodecH264, QueueSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	stuck := &viewer{queue: make(chan *unit, 4), video: &webrtc.TrackLocalStaticRTP{}}
	s.mu.Lock()
	s.active[stuck] = struct{}{}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < testmedia.ClipFrames; i++ {
			f := h264Frame(i)
			if err := s.WriteFrame(&f); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("WriteFrame blocked on a viewer that does not read")
	}
	st := s.Stats()
	if st.FramesDropped != testmedia.ClipFrames-4 || len(stuck.queue) != 4 || !stuck.lostVideo.Load() {
		t.Errorf("dropped %d, queued %d, lostVideo %v", st.FramesDropped, len(stuck.queue), stuck.lostVideo.Load())
	}
	s.mu.Lock()
	delete(s.active, stuck)
	s.mu.Unlock()
}

func TestKeyframeRequestsRateLimited(t *testing.T) {
	var calls atomic.Int32
	now := time.Unix(1000, 0)
	s, err := New(Config{RequestKeyframe: func() { calls.Add(1) }, KeyframeInterval: time.Second,
		now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	steps := []struct {
		advance time.Duration
		want    int32
	}{{0, 1}, {0, 1}, {999 * time.Millisecond, 1}, {time.Millisecond, 2}, {500 * time.Millisecond, 2}, {2 * time.Second, 3}}
	for i, st := range steps {
		now = now.Add(st.advance)
		s.requestKeyframe()
		if got := calls.Load(); got != st.want {
			t.Fatalf("step %d: %d calls, want %d", i, got, st.want)
		}
	}
	if s.Stats().KeyframeRequests != 3 {
		t.Errorf("stats: %d", s.Stats().KeyframeRequests)
	}
}

func TestRTPTime(t *testing.T) {
	for _, tc := range []struct {
		d     time.Duration
		clock uint32
		want  uint32
	}{
		{0, 90000, 0},
		{40 * time.Millisecond, 90000, 3600},
		{20 * time.Millisecond, 8000, 160},
		{20 * time.Millisecond, 48000, 960},
		{time.Second + 500*time.Millisecond, 90000, 135000},
		{-time.Second, 8000, 0},
		{48 * time.Hour, 90000, uint32(uint64(48*3600) * 90000 % (1 << 32))},
	} {
		var p packetizer
		var g media.DTSGuard
		if got := p.stamp(&g, tc.d, tc.clock); got != tc.want {
			t.Errorf("stamp(%v, %d) = %d, want %d", tc.d, tc.clock, got, tc.want)
		}
	}
}

func TestPacketizeH264(t *testing.T) {
	p, err := newPacketizer(1200, 1000, 2000)
	if err != nil {
		t.Fatal(err)
	}
	// An IDR without parameter sets gets the last ones put back in front.
	key := h264Frame(0)
	u, err := p.packetize(&key)
	if err != nil || !u.key || u.ts != 1000 || u.profileLevelID == "" {
		t.Fatalf("keyframe: %+v %v", u, err)
	}
	aus := testmedia.ClipAccessUnits()
	var idr [][]byte
	for _, n := range aus[25].NALUs {
		if typ := h264.NALUType(n[0] & 0x1f); typ != h264.NALUTypeSPS && typ != h264.NALUTypePPS {
			idr = append(idr, n)
		}
	}
	bare := media.Frame{Codec: media.CodecH264, PTS: time.Second, Keyframe: true, Payload: rtph264.JoinAVC(idr)}
	u, err = p.packetize(&bare)
	if err != nil {
		t.Fatal(err)
	}
	got := depacketize(u)
	if !bytes.Equal(got, rtph264.JoinAVC(aus[25].NALUs)) {
		t.Errorf("IDR without SPS/PPS not completed: %d bytes, want %d", len(got), len(rtph264.JoinAVC(aus[25].NALUs)))
	}
	if u.ts != 1000+90000 {
		t.Errorf("ts %d", u.ts)
	}
	for _, bad := range [][]byte{nil, {0, 0, 0, 9, 1}, {0, 0, 0, 0}} {
		f := media.Frame{Codec: media.CodecH264, Payload: bad}
		if _, err := p.packetize(&f); err == nil {
			t.Errorf("packetize(%x) accepted", bad)
		}
	}
	a := media.Frame{Codec: media.CodecOpus, PTS: 20 * time.Millisecond, Payload: []byte{0xfc, 1, 2}}
	if u, err := p.packetize(&a); err != nil || u.ts != 2000+960 || len(u.payloads) != 1 {
		t.Errorf("opus: %+v %v", u, err)
	}
	v := media.Frame{Codec: media.CodecVP8, Keyframe: true, Payload: bytes.Repeat([]byte{7}, 3000)}
	if u, err := p.packetize(&v); err != nil || len(u.payloads) != 3 || !u.key {
		t.Errorf("vp8: %+v %v", u, err)
	}
	// The VP8 frame tag says key frame even when the producer did not.
	v = media.Frame{Codec: media.CodecVP8, Payload: []byte{0x10, 2, 0, 0x9d, 0x01, 0x2a}}
	if u, err := p.packetize(&v); err != nil || !u.key {
		t.Errorf("vp8 key frame by its tag: %+v %v", u, err)
	}
	v.Payload = []byte{0x11, 2, 0}
	if u, err := p.packetize(&v); err != nil || u.key {
		t.Errorf("vp8 inter frame: %+v %v", u, err)
	}
}

func TestPlanFromOffer(t *testing.T) {
	offer := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96 102 104 108 116\r\nc=IN IP4 0.0.0.0\r\n" +
		"a=rtpmap:96 VP8/90000\r\n" +
		"a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n" +
		"a=rtpmap:104 H264/90000\r\na=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n" +
		"a=rtpmap:108 H264/90000\r\na=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
		"a=rtpmap:116 H264/90000\r\na=fmtp:116 packetization-mode=1;profile-level-id=640c1f\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\nc=IN IP4 0.0.0.0\r\n" +
		"a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
	offered, err := parseOffer(offer)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		video, audio media.Codec
		plid         string
		wantVideo    string // track fmtp or mime
		wantPTs      int
		wantAudio    string
	}{
		{"h264 constrained baseline", media.CodecH264, media.CodecPCMA, "42c01e", "profile-level-id=42e01f", 3, webrtc.MimeTypePCMA},
		{"h264 baseline", media.CodecH264, media.CodecOpus, "42001e", "profile-level-id=42001f", 3, webrtc.MimeTypeOpus},
		{"h264 high", media.CodecH264, media.CodecPCMU, "640c1f", "profile-level-id=640c1f", 3, webrtc.MimeTypePCMU},
		{"h264 unknown profile", media.CodecH264, 0, "", "profile-level-id=42001f", 3, ""},
		{"vp8", media.CodecVP8, media.CodecPCMA, "", webrtc.MimeTypeVP8, 1, webrtc.MimeTypePCMA},
		{"audio only: video section kept", 0, media.CodecPCMA, "", "", 1, webrtc.MimeTypePCMA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := plan(offered, tc.video, tc.audio, tc.plid)
			if !strings.Contains(p.video.SDPFmtpLine+p.video.MimeType, tc.wantVideo) || (tc.wantVideo == "") != (p.video.MimeType == "") {
				t.Errorf("video track %+v, want %q", p.video, tc.wantVideo)
			}
			if len(p.videoPTs) != tc.wantPTs {
				t.Errorf("%d video payload types, want %d", len(p.videoPTs), tc.wantPTs)
			}
			if p.audio.MimeType != tc.wantAudio {
				t.Errorf("audio %q, want %q", p.audio.MimeType, tc.wantAudio)
			}
		})
	}
	if _, err := parseOffer("garbage"); err == nil {
		t.Error("garbage offer parsed")
	}
}

var fragCases = []struct {
	name  string
	frag  string
	n     int
	mid   string
	error bool
}{
	{"one candidate with mid", "a=ice-ufrag:abcd\r\na=ice-pwd:x\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n", 1, "0", false},
	{"two sections", "m=video 9 RTP/AVP 0\r\na=mid:v\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\nm=audio 9 RTP/AVP 0\r\na=mid:a\r\na=candidate:2 1 udp 1 127.0.0.1 5002 typ host\r\na=end-of-candidates\r\n", 2, "a", false},
	{"no mid", "a=candidate:1 1 udp 1 127.0.0.1 5000 typ host\n", 1, "", false},
	{"ice restart", "a=ice-ufrag:other\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n", 0, "", true},
	{"empty", "", 0, "", false},
}

func TestParseSDPFrag(t *testing.T) {
	remote := &webrtc.SessionDescription{SDP: "v=0\r\na=ice-ufrag:abcd\r\n"}
	for _, tc := range fragCases {
		t.Run(tc.name, func(t *testing.T) {
			cands, err := parseSDPFrag(tc.frag, remote)
			if (err != nil) != tc.error {
				t.Fatalf("err %v", err)
			}
			if len(cands) != tc.n {
				t.Fatalf("%d candidates, want %d", len(cands), tc.n)
			}
			if tc.n > 0 {
				last := cands[len(cands)-1]
				if tc.mid != "" && (last.SDPMid == nil || *last.SDPMid != tc.mid) {
					t.Errorf("mid %v, want %q", last.SDPMid, tc.mid)
				}
				if tc.mid == "" && (last.SDPMLineIndex == nil || *last.SDPMLineIndex != 0) {
					t.Errorf("no m-line index")
				}
				if !strings.HasPrefix(last.Candidate, "candidate:") {
					t.Errorf("candidate %q", last.Candidate)
				}
			}
		})
	}
}

func TestResourcePath(t *testing.T) {
	for _, tc := range []struct{ target, stripped, want string }{
		{"/whep/call1", "", "/whep/call1"},
		{"/whep/call1/", "", "/whep/call1"},
		{"/api/whep/call1?x=1", "/whep/call1", "/api/whep/call1"}, // behind http.StripPrefix("/api", ...)
		{"http://host/whep/a", "", "/whep/a"},
	} {
		r := httptest.NewRequest("POST", tc.target, nil)
		if tc.stripped != "" {
			r.URL.Path = tc.stripped
		}
		if got := resourcePath(r); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.target, got, tc.want)
		}
	}
}

// TestPacketizeManySlices feeds a keyframe of more than 50 NAL units, what a
// phone in packetization-mode 0 sends (one slice per packet, 30 to 60 for a
// 720p IDR): mediacommon's h264.AVCC parser refuses it
// (h264.MaxNALUsPerAccessUnit), the packetizer must not.
func TestPacketizeManySlices(t *testing.T) {
	p, err := newPacketizer(1200, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	nalus := append([][]byte(nil), testmedia.ClipAccessUnits()[0].NALUs...)
	for i := range 60 { // more IDR slices: first_mb_in_slice is not checked
		nalus = append(nalus, []byte{0x65, 0x88, byte(i), 0x80})
	}
	want := rtph264.JoinAVC(nalus)
	f := media.Frame{Codec: media.CodecH264, Payload: want} // Keyframe not set: found by its IDR
	u, err := p.packetize(&f)
	if err != nil || !u.key || u.profileLevelID == "" {
		t.Fatalf("%d NAL units: %+v %v", len(nalus), u, err)
	}
	got := depacketize(u)
	if !bytes.Equal(got, want) {
		t.Errorf("%d NAL units: %d bytes through RTP, want %d", len(nalus), len(got), len(want))
	}
}

// depacketize runs u's RTP payloads through the H.264 depacketizer and
// returns the last access unit it gives.
func depacketize(u *unit) []byte {
	dec, _ := rtph264.NewDecoder(rtph264.DecoderConfig{})
	var got []byte
	for i, pl := range u.payloads {
		pkt := rtpPacket(uint16(i), u.ts, i == len(u.payloads)-1, pl)
		if fr, _, err := dec.Decode(pkt); err == nil {
			got = append([]byte(nil), fr.Payload...)
		}
	}
	return got
}
