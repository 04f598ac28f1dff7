package whip_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/media/whip"
)

// received collects a subscriber's frames (copied) and its end.
type received struct {
	mu     sync.Mutex
	frames []media.Frame
	ended  chan struct{}
}

func newReceived() *received { return &received{ended: make(chan struct{})} }

func (r *received) onFrame(f *media.Frame) {
	c := *f
	c.Payload = slices.Clone(f.Payload)
	r.mu.Lock()
	r.frames = append(r.frames, c)
	r.mu.Unlock()
}

func (r *received) onEnd() { close(r.ended) }

func (r *received) snapshot() []media.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.frames)
}

// decode plays the frames through a sound.Live at 8 kHz, as the REST
// server does for a call, and returns what a reader pulling after every
// frame gets.
func decode(t *testing.T, frames []media.Frame) []int16 {
	t.Helper()
	live, err := sound.NewLive(8000)
	require.NoError(t, err)
	var pcm []int16
	buf := make([]int16, 800)
	for i := range frames {
		require.NoError(t, live.WriteFrame(&frames[i]))
		n, err := live.Read(buf)
		require.NoError(t, err)
		pcm = append(pcm, buf[:n]...)
	}
	return pcm
}

// TestPublishOpusTone: a pion publisher sends the Opus packets of a 1 kHz
// tone file over WHIP; a subscriber gets them as Opus frames with PTS from
// the RTP clock, sound.Live decodes the tone; a second publisher of the same
// name gets 409; DELETE ends the publication, the subscriber learns it, and
// the name is free again.
func TestPublishOpusTone(t *testing.T) {
	srv, base := startServer(t, whip.Config{})
	pkts := opusPackets(t, "../sound/testdata/tone1k_48000.opus")

	_, err := srv.Subscribe("op1", func(*media.Frame) {}, nil)
	require.ErrorIs(t, err, whip.ErrNotFound)

	pub := publish(t, base, "/whip/op1", webrtc.MimeTypeOpus, 48000, 2)
	require.True(t, srv.Published("op1"))
	rec := newReceived()
	cancel, err := srv.Subscribe("op1", rec.onFrame, rec.onEnd)
	require.NoError(t, err)
	second := newReceived()
	cancel2, err := srv.Subscribe("op1", second.onFrame, second.onEnd)
	require.NoError(t, err)

	ctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	sent := make(chan error, 1)
	go func() { sent <- pub.send(ctx, pkts, 3) }()

	// A second publisher of the live name is refused.
	pc2 := newPublisherPC(t)
	_, err = pc2.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	require.NoError(t, err)
	code, body, _ := post(t, base+"/whip/op1", "application/sdp", offer(t, pc2))
	assert.Equal(t, http.StatusConflict, code, body)

	require.NoError(t, <-sent)
	frames := rec.snapshot()
	t.Logf("sent %d packets, received %d frames; stats %+v", 3*len(pkts), len(frames), srv.Stats())
	require.Greater(t, len(frames), 3*len(pkts)*9/10, "nearly every packet arrived on loopback")
	for i, f := range frames {
		require.Equal(t, media.CodecOpus, f.Codec)
		require.Equal(t, uint32(48000), f.ClockRate)
		if i > 0 {
			// PTS from the RTP timestamps: 20 ms apart, more where a
			// packet was lost.
			d := f.PTS - frames[i-1].PTS
			require.True(t, d > 0 && d%(20*time.Millisecond) == 0, "frame %d: %v after the one before", i, d)
		}
	}
	require.Equal(t, time.Duration(0), frames[0].PTS)
	pcm := decode(t, frames)
	require.Greater(t, len(pcm), 8000, "more than a second of audio")
	mid := pcm[len(pcm)/4 : len(pcm)*3/4]
	g := testmedia.Goertzel(mid, 8000, 1000)
	t.Logf("Goertzel(1 kHz) over %d samples: %.3f", len(mid), g)
	assert.Greater(t, g, 0.5, "the 1 kHz tone went through")

	// The second subscriber left early: it got frames, and no end.
	require.Equal(t, 2, srv.Stats().Subscribers)
	cancel2()
	cancel2()
	require.NotEmpty(t, second.snapshot())

	require.Equal(t, http.StatusNotFound, del(t, base+"/whip/op1/0123"))
	require.Equal(t, http.StatusOK, del(t, pub.location))
	select {
	case <-rec.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the subscriber did not learn that the publication ended")
	}
	cancel() // a no-op now
	select {
	case <-second.ended:
		t.Fatal("a cancelled subscriber was told of the end")
	default:
	}
	require.False(t, srv.Published("op1"))
	_, err = srv.Subscribe("op1", rec.onFrame, nil)
	require.ErrorIs(t, err, whip.ErrNotFound)
	require.Equal(t, http.StatusNotFound, del(t, pub.location), "the resource is gone")
	st := srv.Stats()
	require.Equal(t, 0, st.Publishers)
	require.Equal(t, 0, st.Subscribers)
	require.Equal(t, uint64(1), st.PublishersTotal)

	// The name is free again.
	pub2 := publish(t, base, "/whip/op1", webrtc.MimeTypeOpus, 48000, 2)
	require.Equal(t, http.StatusOK, del(t, pub2.location))
}

// TestPublishPCMU: G.711 is accepted too; its frames carry 8 kHz timing.
func TestPublishPCMU(t *testing.T) {
	srv, base := startServer(t, whip.Config{})
	pub := publish(t, base, "/whip/g711", webrtc.MimeTypePCMU, 8000, 1)
	rec := newReceived()
	_, err := srv.Subscribe("g711", rec.onFrame, rec.onEnd)
	require.NoError(t, err)
	// 1 s of a 1 kHz tone as 20 ms PCMU packets.
	var pkts [][]byte
	for i := range 50 {
		pkts = append(pkts, g711.EncodeULaw(nil, testmedia.Tone(1000, 8000, i*160, 160, 0.5)))
	}
	require.NoError(t, pub.send(context.Background(), pkts, 1))
	frames := rec.snapshot()
	require.Greater(t, len(frames), 45)
	require.Equal(t, media.CodecPCMU, frames[0].Codec)
	require.Equal(t, 20*time.Millisecond, frames[0].Duration)
	pcm := decode(t, frames)
	assert.Greater(t, testmedia.Goertzel(pcm[len(pcm)/4:len(pcm)*3/4], 8000, 1000), 0.8)
	require.Equal(t, http.StatusOK, del(t, pub.location))
	<-rec.ended
}

// TestMediaTimeout: a publisher whose audio stops is ended after
// MediaTimeout, though its peer connection is still up; one that never
// sends is ended after ConnectTimeout.
func TestMediaTimeout(t *testing.T) {
	srv, base := startServer(t, whip.Config{MediaTimeout: 400 * time.Millisecond, ConnectTimeout: 2 * time.Second})
	pkts := opusPackets(t, "../sound/testdata/tone1k_48000.opus")
	pub := publish(t, base, "/whip/quiet", webrtc.MimeTypeOpus, 48000, 2)
	rec := newReceived()
	_, err := srv.Subscribe("quiet", rec.onFrame, rec.onEnd)
	require.NoError(t, err)
	require.NoError(t, pub.send(context.Background(), pkts[:10], 1))
	start := time.Now()
	select {
	case <-rec.ended:
		t.Logf("ended %v after the last packet", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("the silent publication did not time out")
	}
	require.NotEmpty(t, rec.snapshot())
	require.False(t, srv.Published("quiet"))

	_ = publish(t, base, "/whip/mute", webrtc.MimeTypeOpus, 48000, 2)
	mute := newReceived()
	_, err = srv.Subscribe("mute", mute.onFrame, mute.onEnd)
	require.NoError(t, err)
	select {
	case <-mute.ended:
	case <-time.After(6 * time.Second):
		t.Fatal("a publication that never sent did not time out")
	}
	require.Empty(t, mute.snapshot())
}

// TestRefusals: what the endpoint refuses, with which status.
func TestRefusals(t *testing.T) {
	denied := errors.New("denied")
	srv, base := startServer(t, whip.Config{MaxPublishers: 1, MaxBody: 16 << 10,
		Authorize: func(w http.ResponseWriter, r *http.Request, name string) bool {
			if name == "secret" {
				http.Error(w, denied.Error(), http.StatusForbidden)
				return false
			}
			return true
		}})
	videoOnly := newPublisherPC(t)
	_, err := videoOnly.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	require.NoError(t, err)
	// G.722 only: audio, but nothing sipstream decodes.
	g722 := &webrtc.MediaEngine{}
	require.NoError(t, g722.RegisterCodec(webrtc.RTPCodecParameters{PayloadType: 9,
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeG722, ClockRate: 8000}}, webrtc.RTPCodecTypeAudio))
	g722PC, err := webrtc.NewAPI(webrtc.WithMediaEngine(g722)).NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	defer g722PC.Close()
	_, err = g722PC.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	require.NoError(t, err)
	audio := newPublisherPC(t)
	_, err = audio.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	require.NoError(t, err)
	audioOffer := offer(t, audio)

	for _, c := range []struct {
		what, method, path, ctype, body string
		want                            int
	}{
		{"not SDP", http.MethodPost, "/whip/a", "text/plain", audioOffer, http.StatusUnsupportedMediaType},
		{"garbage", http.MethodPost, "/whip/a", "application/sdp", "v=0\r\nnonsense", http.StatusBadRequest},
		{"empty", http.MethodPost, "/whip/a", "application/sdp", "", http.StatusBadRequest},
		{"too large", http.MethodPost, "/whip/a", "application/sdp", strings.Repeat("a=x\r\n", 4000), http.StatusRequestEntityTooLarge},
		{"video only", http.MethodPost, "/whip/a", "application/sdp", offer(t, videoOnly), http.StatusNotAcceptable},
		{"G.722 only", http.MethodPost, "/whip/a", "application/sdp", offer(t, g722PC), http.StatusNotAcceptable},
		{"no name", http.MethodPost, "/whip/", "application/sdp", audioOffer, http.StatusNotFound},
		{"control character", http.MethodPost, "/whip/a%0Ab", "application/sdp", audioOffer, http.StatusNotFound},
		{"too deep", http.MethodDelete, "/whip/a/b/c", "", "", http.StatusNotFound},
		{"GET", http.MethodGet, "/whip/a", "", "", http.StatusMethodNotAllowed},
		{"PATCH", http.MethodPatch, "/whip/a/b", "application/trickle-ice-sdpfrag", "", http.StatusMethodNotAllowed},
		{"unauthorized", http.MethodPost, "/whip/secret", "application/sdp", audioOffer, http.StatusForbidden},
	} {
		req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		require.NoError(t, err)
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, c.want, resp.StatusCode, c.what)
	}
	require.Equal(t, 0, srv.Stats().Publishers, "no refused offer left a publication")

	pub := publish(t, base, "/whip/one", webrtc.MimeTypeOpus, 48000, 2)
	other := newPublisherPC(t)
	_, err = other.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	require.NoError(t, err)
	code, body, _ := post(t, base+"/whip/two", "application/sdp", offer(t, other))
	assert.Equal(t, http.StatusServiceUnavailable, code, "MaxPublishers: %s", body)
	require.Equal(t, http.StatusNotFound, del(t, strings.Replace(pub.location, "/one/", "/two/", 1)), "a resource under another name")
	require.Equal(t, http.StatusOK, del(t, pub.location))
}

// TestCloseEndsPublications: Close ends what is published, tells the
// subscribers, and refuses later publishers.
func TestCloseEndsPublications(t *testing.T) {
	srv, base := startServer(t, whip.Config{})
	_ = publish(t, base, "/whip/x", webrtc.MimeTypeOpus, 48000, 2)
	rec := newReceived()
	_, err := srv.Subscribe("x", rec.onFrame, rec.onEnd)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, srv.Close(ctx))
	<-rec.ended
	require.NoError(t, srv.Close(ctx), "idempotent")
	pc := newPublisherPC(t)
	_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	require.NoError(t, err)
	code, _, _ := post(t, base+"/whip/y", "application/sdp", offer(t, pc))
	require.Equal(t, http.StatusServiceUnavailable, code)
	_, err = srv.Subscribe("x", rec.onFrame, nil)
	require.ErrorIs(t, err, whip.ErrClosed)
}

// TestReorder: packets that arrive out of order (pairs swapped), twice, or
// never reach the subscriber in sequence order, once each; the missing
// packet's 20 ms shows as a gap in the PTS.
func TestReorder(t *testing.T) {
	srv, base := startServer(t, whip.Config{})
	pc := newPublisherPC(t)
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", "reorder")
	require.NoError(t, err)
	_, err = pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	require.NoError(t, err)
	code, answer, _ := post(t, base+"/whip/r", "application/sdp", offer(t, pc))
	require.Equal(t, http.StatusCreated, code, answer)
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	rec := newReceived()
	_, err = srv.Subscribe("r", rec.onFrame, rec.onEnd)
	require.NoError(t, err)

	// Sequence 0..59 sent as 1,0,3,2,... with 30 missing and 41 sent twice.
	var order []int
	for i := 0; i < 60; i += 2 {
		order = append(order, i+1, i)
	}
	order = slices.DeleteFunc(order, func(i int) bool { return i == 30 })
	order = slices.Insert(order, slices.Index(order, 41)+1, 41)
	payload := g711.EncodeULaw(nil, testmedia.Tone(1000, 8000, 0, 160, 0.5))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	for deadline := time.Now().Add(10 * time.Second); sent < len(order) && time.Now().Before(deadline); {
		<-tick.C
		i := order[sent]
		err := track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(1000 + i), Timestamp: uint32(5000 + 160*i)}, Payload: payload})
		require.NoError(t, err)
		if pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
			sent++ // before the connection is up, packets are not sent
		}
	}
	time.Sleep(200 * time.Millisecond)
	frames := rec.snapshot()
	require.Greater(t, len(frames), 40)
	// In order, once each: every step is 20 ms, or a multiple where
	// packets are missing (the one never sent; loopback rarely loses
	// another).
	gaps := 0
	for i := 1; i < len(frames); i++ {
		d := frames[i].PTS - frames[i-1].PTS
		require.True(t, d > 0 && d%(20*time.Millisecond) == 0, "frame %d: %v after the one before", i, d)
		if d > 20*time.Millisecond {
			gaps++
		}
	}
	require.GreaterOrEqual(t, gaps, 1, "the missing packet's slot")
	require.LessOrEqual(t, gaps, 3)
}

// TestVideoIgnored: an offer whose first section is video (as OBS and
// some browsers send it) is answered: the audio arrives, the video's
// packets are read and discarded.
func TestVideoIgnored(t *testing.T) {
	srv, base := startServer(t, whip.Config{})
	pc := newPublisherPC(t)
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "av")
	require.NoError(t, err)
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", "av")
	require.NoError(t, err)
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		_, err = pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		require.NoError(t, err)
	}
	code, answer, loc := post(t, base+"/whip/av", "application/sdp", offer(t, pc))
	require.Equal(t, http.StatusCreated, code, answer)
	require.True(t, strings.Index(answer, "m=video") < strings.Index(answer, "m=audio"), "sections in the offer's order")
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	rec := newReceived()
	_, err = srv.Subscribe("av", rec.onFrame, rec.onEnd)
	require.NoError(t, err)
	payload := g711.EncodeULaw(nil, testmedia.Tone(1000, 8000, 0, 160, 0.5))
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && (len(rec.snapshot()) < 20 || srv.Stats().VideoPacketsIgnored < 5); {
		<-tick.C
		require.NoError(t, audio.WriteSample(pionmedia.Sample{Data: payload, Duration: 20 * time.Millisecond}))
		// A VP8 key frame header and some bytes: never decoded here.
		require.NoError(t, video.WriteSample(pionmedia.Sample{Data: append([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a}, make([]byte, 200)...), Duration: 20 * time.Millisecond}))
	}
	st := srv.Stats()
	t.Logf("stats %+v", st)
	require.GreaterOrEqual(t, len(rec.snapshot()), 20, "audio frames")
	require.GreaterOrEqual(t, st.VideoPacketsIgnored, uint64(5))
	for _, f := range rec.snapshot() {
		require.Equal(t, media.CodecPCMU, f.Codec)
	}
	require.Equal(t, http.StatusOK, del(t, base+loc))
	<-rec.ended
}

// TestNoSocketLeak: with ICE confined to two UDP ports on loopback, a
// third publication at once is refused (503: no candidate), and eight
// publications one after the other (ended by DELETE, by the media timeout,
// by the publisher closing) all connect: each gives its socket back.
func TestNoSocketLeak(t *testing.T) {
	lo := testenv.FreeUDPRange(t, 2)
	srv, base := startServer(t, whip.Config{ICEIPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		UDPPortMin: uint16(lo), UDPPortMax: uint16(lo + 1), MediaTimeout: 300 * time.Millisecond})
	// Two publications take both ports: a third is refused (503).
	var locs []string
	for _, name := range []string{"a", "b", "c"} {
		pc := newPublisherPC(t)
		_, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		require.NoError(t, err)
		code, body, loc := post(t, base+"/whip/"+name, "application/sdp", offer(t, pc))
		if name == "c" {
			require.Equal(t, http.StatusServiceUnavailable, code, body)
			require.Contains(t, body, "no ICE candidate")
			break
		}
		require.Equal(t, http.StatusCreated, code, body)
		locs = append(locs, loc)
	}
	require.Equal(t, 2, srv.Stats().Publishers, "the refused offer left nothing")
	for _, loc := range locs {
		require.Equal(t, http.StatusOK, del(t, base+loc))
	}
	payload := g711.EncodeULaw(nil, testmedia.Tone(1000, 8000, 0, 160, 0.5))
	for i := range 8 {
		pub := publish(t, base, "/whip/leak", webrtc.MimeTypePCMU, 8000, 1)
		rec := newReceived()
		_, err := srv.Subscribe("leak", rec.onFrame, rec.onEnd)
		require.NoError(t, err)
		require.NoError(t, pub.send(context.Background(), [][]byte{payload}, 5))
		switch i % 3 {
		case 0:
			require.Equal(t, http.StatusOK, del(t, pub.location))
		case 1:
			// The media timeout ends it.
		case 2:
			require.NoError(t, pub.pc.GracefulClose())
		}
		select {
		case <-rec.ended:
		case <-time.After(10 * time.Second):
			t.Fatalf("publication %d did not end", i)
		}
		require.NotEmpty(t, rec.snapshot(), "publication %d", i)
		_ = pub.pc.GracefulClose()
	}
}
