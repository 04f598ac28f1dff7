//go:build interop

package e2e

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/internal/netsim"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/media/session"
)

// Issue 11's acceptance tests: a phone on a bad link. Only the gateway's
// inbound RTP is impaired (its RTP sockets wrapped in netsim through
// callmgr.Config.MediaListen; RTCP and SIP are clean): 30 ms delay, up to
// 25 ms jitter with the order kept, and seeded loss. The stream published
// to a real nginx-rtmp is read back by ffmpeg and analysed over 10 s (25
// fps: 250 frames) from the first keyframe, as a viewer joining sees it.
// Every scenario logs its figures on one line starting "LOSSY scenario=".

const (
	lossyWindow = 10 * time.Second
	lossyLead   = 3 * time.Second // room for the first keyframe
)

// lossyLink is the inbound path of the issue: 30 ms ± 25 ms, order kept.
func lossyLink(seed uint64, loss float64) netsim.Config {
	return netsim.Config{Seed: seed, Delay: 30 * time.Millisecond, Jitter: 25 * time.Millisecond, Loss: loss}
}

// linkTaps reports what the simulated links did and when the first
// Sender Reports came.
type linkTaps struct {
	mu    sync.Mutex
	conns []*netsim.RecvConn
	rtcp  []*sourceTap
	rtp   []*sourceTap
}

func (l *linkTaps) stats() netsim.Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	var sum netsim.Stats
	for _, c := range l.conns {
		s := c.Stats()
		sum.Sent += s.Sent
		sum.Lost += s.Lost
		sum.Bursts += s.Bursts
		sum.LongestBurst = max(sum.LongestBurst, s.LongestBurst)
	}
	return sum
}

// firstSRs returns, per RTCP socket in the order opened (audio, video),
// how long after since its first Sender Report came (-1: none).
func (l *linkTaps) firstSRs(since time.Time) []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	for _, c := range l.rtcp {
		d := time.Duration(-1)
		if f := c.first(); !f.IsZero() {
			d = f.Sub(since).Round(10 * time.Millisecond)
		}
		out = append(out, d)
	}
	return out
}

// impairedListen returns a ListenFunc that wraps every RTP socket (even
// port) in a netsim.RecvConn with link, each socket with its own seed
// (link.Seed, then +1, +2, ... in the order they are opened), and opens
// RTCP sockets (odd ports) unimpaired. Every socket is tapped (see
// sourceTap) before the simulated network.
func impairedListen(link netsim.Config) (session.ListenFunc, *linkTaps) {
	taps := &linkTaps{}
	listen := func(a netip.AddrPort) (session.PacketConn, error) {
		if a.Port()%2 != 0 {
			c, err := session.ListenUDP(a)
			if err != nil {
				return nil, err
			}
			tap := &sourceTap{PacketConn: c, rtcp: true}
			taps.mu.Lock()
			taps.rtcp = append(taps.rtcp, tap)
			taps.mu.Unlock()
			return tap, nil
		}
		taps.mu.Lock()
		cfg := link
		cfg.Seed += uint64(len(taps.conns))
		taps.mu.Unlock()
		u, err := session.ListenUDP(a)
		if err != nil {
			return nil, err
		}
		tap := &sourceTap{PacketConn: u}
		c, err := netsim.NewRecvConn(tap, cfg)
		if err != nil {
			u.Close()
			return nil, err
		}
		taps.mu.Lock()
		taps.conns = append(taps.conns, c)
		taps.rtp = append(taps.rtp, tap)
		taps.mu.Unlock()
		return c, nil
	}
	return listen, taps
}

// lossyResult is one scenario's measurements.
type lossyResult struct {
	testenv.StreamReport
	Link      netsim.Stats
	CallStats string
	// FirstSR is when the first Sender Reports came, per RTCP socket,
	// after the call was established.
	FirstSR []time.Duration
	AV      testenv.AVReport
	// SourceAV is the A/V offset of the phone's own media, marker by
	// marker (audio onset minus flash, on its RTCP clock); SourceNote says
	// why it is missing.
	SourceAV   []time.Duration
	SourceNote string
	// SRDrift is how far the phone's RTCP moved its video against its
	// audio during the call.
	SRDrift time.Duration
	// PhoneFPS is the frame rate the phone really sent (from its RTP,
	// tapped before the simulated network); zero when not measured.
	PhoneFPS float64
}

func (r lossyResult) line(scenario string) string {
	src, drift := "n/a", "n/a"
	if len(r.SourceAV) > 0 {
		src = medianDuration(r.SourceAV).Round(time.Millisecond).String()
	}
	if len(r.SourceAV) > 0 || r.SourceNote != "" {
		drift = r.SRDrift.String()
	}
	return fmt.Sprintf("LOSSY scenario=%s %s av=%s srcav=%s srdrift=%s phonefps=%.2f linkLoss=%d/%d bursts=%d",
		scenario, r.StreamReport, r.AV, src, drift, r.PhoneFPS, r.Link.Lost, r.Link.Sent, r.Link.Bursts)
}

// publishFromBaresip has a real baresip (registered at kamailio with
// digest auth, sending H.264 640x360 25 fps ≈ 800 kbit/s and G.711 made
// from marker media: a white flash and a tone burst at every second, so
// the A/V offset can be read from the stream) called by a callmgr.Manager through kamailio,
// with the Manager's inbound RTP going through link; the call's RTMP leg
// publishes to nginx-rtmp, read back and analysed.
func publishFromBaresip(t *testing.T, stream string, link netsim.Config, policy session.LossPolicy) lossyResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	kam := testenv.StartKamailio(t, testenv.KamailioConfig{Users: map[string]string{"bob": "pwbob"}})
	markers := testenv.MakeMarkerMedia(t, 640, 360, 25, 45*time.Second)
	testenv.StartBaresip(t, testenv.BaresipConfig{User: "bob", Password: "pwbob", Registrar: kam.Addr, Video: true,
		AudioFile: markers.Audio, VideoFile: markers.Video})
	ngx := testenv.StartNginxRTMP(t)
	rec := testenv.RecordStream(t, ngx.RTMPURL()+"/"+stream, lossyLead+lossyWindow)
	require.NoError(t, ngx.WaitStream(ctx, stream), "ffmpeg waits at nginx before the call starts: %s", rec.Log())

	listen, taps := impairedListen(link)
	m, err := callmgr.New(callmgr.Config{
		ListenAddr: "127.0.0.1:0", PublicIP: loopback, MediaIP: loopback,
		RTPPortMin: 24200, RTPPortMax: 24299, MediaListen: listen, LossPolicy: policy,
	})
	require.NoError(t, err)
	defer m.Close(context.Background())
	call, err := m.StartCall(ctx, callmgr.CallParams{CallID: stream, Callee: "bob",
		SIPDomain: kam.Host(), SIPPort: kam.Port, SIPOutboundProxy: kam.Addr,
		RTMPURL: ngx.RTMPURL(), RTMPStream: stream, HasAudio: true, HasVideo: true})
	require.NoError(t, err)
	require.NoError(t, call.WaitEstablished(ctx), "call to baresip through kamailio")
	established := time.Now()

	require.NoError(t, rec.Wait(lossyLead+lossyWindow+30*time.Second), "ffmpeg read the stream from nginx")
	res := lossyResult{Link: taps.stats(), CallStats: fmt.Sprintf("%+v", call.Stats()), FirstSR: taps.firstSRs(established)}
	require.NoError(t, call.Terminate(ctx))
	require.NoError(t, m.Close(ctx))
	res.StreamReport = testenv.AnalyseRecording(t, rec, lossyWindow)
	res.AV = testenv.MarkerOffsets(t, res.File, 25)
	res.SourceAV, res.SourceNote, res.SRDrift, res.PhoneFPS = sourceAV(t, append(append([]*sourceTap(nil), taps.rtp...), taps.rtcp...))
	return res
}

// checkLossy asserts the acceptance figures of a scenario.
type lossyLimits struct {
	MinFrames     int
	MaxFreeze     time.Duration
	MaxKeyframeIv time.Duration
	// DecodeErrorsOK accepts decoder complaints (the conceal policy
	// publishes damaged frames on purpose); each frame must still decode.
	DecodeErrorsOK bool
	// NoMarkers: the source has no A/V markers, the offset is not read.
	NoMarkers bool
}

func checkLossy(t *testing.T, scenario string, r lossyResult, lim lossyLimits) {
	t.Helper()
	t.Log(r.line(scenario))
	t.Logf("call stats: %s", r.CallStats)
	t.Logf("A/V offsets (audio minus video) marker by marker: published %v; sent by the phone %v %s; first Sender Reports (audio, video) %v after the call was established",
		r.AV.Offsets, r.SourceAV, r.SourceNote, r.FirstSR)
	if len(r.DecodeErrors) > 0 || len(r.DTSWarnings) > 0 {
		t.Logf("decode errors: %q; ffmpeg timestamp warnings: %q", r.DecodeErrors, r.DTSWarnings)
	}
	assert.Equal(t, lossyWindow, r.Window, "a full window after the first keyframe")
	if lim.MinFrames > 0 {
		// The limits are of 250 frames at 25 fps. baresip decoding its
		// source and encoding under -race sends about 23.5 fps: it is
		// held to the same share of what it really sent.
		nominal := int(lossyWindow / (40 * time.Millisecond))
		want := lim.MinFrames
		if sent := int(r.PhoneFPS * lossyWindow.Seconds()); r.PhoneFPS > 0 && sent < nominal {
			want = int(math.Ceil(float64(lim.MinFrames) * float64(sent) / float64(nominal)))
			t.Logf("the phone sent %.2f fps (%d frames in the window): at least %d published (%d of %d at 25 fps)", r.PhoneFPS, sent, want, lim.MinFrames, nominal)
		}
		assert.GreaterOrEqual(t, r.Video.Frames, want, "frames published in %v", lossyWindow)
	}
	if lim.MaxFreeze > 0 {
		assert.LessOrEqual(t, r.Video.LongestGap, lim.MaxFreeze, "longest freeze")
	}
	if lim.MaxKeyframeIv > 0 {
		// FLV times are whole milliseconds.
		assert.LessOrEqual(t, r.Video.LongestKeyframeInterval, lim.MaxKeyframeIv+2*time.Millisecond, "longest keyframe interval")
	}
	if !lim.DecodeErrorsOK {
		assert.Empty(t, r.DecodeErrors, "ffmpeg decodes the window without errors")
	}
	assert.Zero(t, r.DTSErrors(), "strictly increasing DTS on every track")
	assert.Equal(t, r.Video.Frames, r.Video.DecodedFrames, "every published frame decodes")
	// The A/V offset is logged, not asserted: baresip's own RTCP moves its
	// video against its audio by tens of milliseconds during a call
	// (srdrift, measured in every run from its Sender Reports), so no
	// offset read from its stream can be blamed on the gateway. Before
	// the phone's first Sender Report (about 5 s in) the gateway has only
	// arrival times; after it, it follows that report. The gateway's own
	// A/V is checked with a source whose RTCP is exact
	// (TestInteropSippAVLipSyncToNginx). Markers must still be found, so
	// that the figure is there.
	if !lim.NoMarkers {
		assert.GreaterOrEqual(t, len(r.AV.Offsets)+r.AV.Skipped, 4, "flashes found: %v", r.AV)
	}
}

// TestInteropLossyBaresip2pct: issue 11, a real phone through kamailio
// with 2 % random loss on the gateway's inbound RTP.
func TestInteropLossyBaresip2pct(t *testing.T) {
	r := publishFromBaresip(t, "lossy-baresip-2", lossyLink(1102, 0.02), session.LossFreeze)
	checkLossy(t, "baresip-2%", r, lossyLimits{MinFrames: 150, MaxFreeze: 600 * time.Millisecond, MaxKeyframeIv: 2 * time.Second})
}

// TestInteropLossyBaresip05pct: the same with 0.5 % loss.
func TestInteropLossyBaresip05pct(t *testing.T) {
	r := publishFromBaresip(t, "lossy-baresip-05", lossyLink(1105, 0.005), session.LossFreeze)
	checkLossy(t, "baresip-0.5%", r, lossyLimits{MinFrames: 225, MaxFreeze: 400 * time.Millisecond, MaxKeyframeIv: 2 * time.Second})
}

// TestInteropLossyBaresipLongGOP: baresip sends a keyframe every 10 s
// unless asked (libx264 through its avcodec module, whose GOP is not
// configurable in baresip 1.0); with no loss, the published keyframe
// interval must still be at most 2 s. (The frame count is logged, not
// checked: baresip decoding its source file and encoding falls a little
// under 25 fps when the machine is busy.)
func TestInteropLossyBaresipLongGOP(t *testing.T) {
	r := publishFromBaresip(t, "lossy-baresip-gop", lossyLink(1100, 0), session.LossFreeze)
	checkLossy(t, "baresip-0%-gop10s", r, lossyLimits{MaxKeyframeIv: 2 * time.Second})
}
