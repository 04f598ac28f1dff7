//go:build interop

package e2e

import (
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/rtph264"
	"github.com/sipstream/sipstream/media/session"
)

// sourceTap is one of the gateway's sockets seen from the test: it keeps
// what the phone sent, before the simulated network (an RTP socket's
// packets, an RTCP socket's Sender Reports), so that the A/V offset the
// phone itself put into its media can be told from the gateway's.
type sourceTap struct {
	session.PacketConn
	rtcp bool

	mu      sync.Mutex
	packets []rtp.Packet
	srs     []rtcp.SenderReport
	firstSR time.Time
}

func (c *sourceTap) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, from, err := c.PacketConn.ReadFromUDPAddrPort(b)
	if err != nil {
		return n, from, err
	}
	if c.rtcp {
		pkts, perr := rtcp.Unmarshal(b[:n])
		if perr == nil {
			c.mu.Lock()
			for _, p := range pkts {
				if sr, ok := p.(*rtcp.SenderReport); ok {
					if c.firstSR.IsZero() {
						c.firstSR = time.Now()
					}
					c.srs = append(c.srs, *sr)
				}
			}
			c.mu.Unlock()
		}
		return n, from, err
	}
	var p rtp.Packet
	if p.Unmarshal(append([]byte(nil), b[:n]...)) == nil {
		c.mu.Lock()
		c.packets = append(c.packets, p)
		c.mu.Unlock()
	}
	return n, from, err
}

func (c *sourceTap) first() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.firstSR
}

// ntpSeconds converts a 64-bit NTP timestamp to seconds.
func ntpSeconds(ntp uint64) float64 {
	return float64(ntp>>32) + float64(ntp&0xffffffff)/(1<<32)
}

// senderClock maps a stream's RTP timestamps to the sender's NTP clock
// (seconds) with its last Sender Report.
type senderClock struct {
	ntp  float64
	rtp  uint32
	rate float64
}

func (s senderClock) at(ts uint32) float64 { return s.ntp + float64(int32(ts-s.rtp))/s.rate }

// sourceAV reads the A/V offset of the marker media as the phone sent it:
// tone onsets in its G.711 audio and flash onsets in its H.264 video (the
// access units reassembled from the tapped packets and decoded by ffmpeg),
// both put on the phone's NTP clock with its last Sender Reports. It
// returns the offsets (audio onset minus flash onset), or nil and why not,
// and how far the phone's video mapping moved between its first and last
// Sender Report (a phone whose RTCP contradicts itself has no single
// true A/V offset).
func sourceAV(t *testing.T, taps []*sourceTap) (offsets []time.Duration, note string, drift time.Duration, fps float64) {
	t.Helper()
	clocks := map[uint32]senderClock{}
	firsts := map[uint32]senderClock{}
	var audio, video []rtp.Packet
	for _, tp := range taps {
		tp.mu.Lock()
		for _, sr := range tp.srs {
			clocks[sr.SSRC] = senderClock{ntp: ntpSeconds(sr.NTPTime), rtp: sr.RTPTime}
			if _, ok := firsts[sr.SSRC]; !ok {
				firsts[sr.SSRC] = clocks[sr.SSRC]
			}
		}
		for _, p := range tp.packets {
			switch {
			case p.PayloadType == 8:
				audio = append(audio, p)
			case p.PayloadType >= 96:
				video = append(video, p)
			}
		}
		tp.mu.Unlock()
	}
	if len(audio) == 0 || len(video) == 0 {
		return nil, "no PCMA audio or no video tapped", 0, 0
	}
	ac, ok1 := clocks[audio[0].SSRC]
	vc, ok2 := clocks[video[0].SSRC]
	if !ok1 || !ok2 {
		return nil, "no Sender Report for audio or video", 0, 0
	}
	ac.rate, vc.rate = 8000, 90000
	// How far the phone's mapping moved between its first and last
	// Sender Report (its RTP clock drifting from its NTP clock).
	af, vf := firsts[audio[0].SSRC], firsts[video[0].SSRC]
	af.rate, vf.rate = 8000, 90000
	audioDrift := time.Duration((ac.at(ac.rtp) - af.at(ac.rtp)) * float64(time.Second)).Round(100 * time.Microsecond)
	drift = time.Duration((vc.at(vc.rtp) - vf.at(vc.rtp)) * float64(time.Second)).Round(100 * time.Microsecond)
	t.Logf("phone's Sender Reports: audio mapping moved %v, video %v between the first and the last", audioDrift, drift)
	drift -= audioDrift

	// Audio: onsets after at least 100 ms of silence, to the sample.
	sort.SliceStable(audio, func(i, j int) bool {
		return int32(audio[i].Timestamp-audio[0].Timestamp) < int32(audio[j].Timestamp-audio[0].Timestamp)
	})
	var onsets []float64
	quiet := 0
	var next uint32
	var pcm []int16
	for i, p := range audio {
		if i > 0 && p.Timestamp != next {
			quiet = 0 // a gap: start over
		}
		pcm = g711.DecodeALaw(pcm[:0], p.Payload)
		for k, x := range pcm {
			if x > -300 && x < 300 {
				quiet++
				continue
			}
			if (x > 3000 || x < -3000) && quiet >= 800 {
				onsets = append(onsets, ac.at(p.Timestamp+uint32(k)))
			}
			if x > 3000 || x < -3000 {
				quiet = 0
			}
		}
		next = p.Timestamp + uint32(len(p.Payload))
	}

	// Video: access units in arrival order (the tap is before the
	// simulated network: loopback keeps the order), decoded by ffmpeg.
	dec, err := rtph264.NewDecoder(rtph264.DecoderConfig{AnnexB: true})
	if err != nil {
		t.Fatal(err)
	}
	var annexB []byte
	var stamps []uint32
	for i := range video {
		f, ts, err := dec.Decode(&video[i])
		if err != nil {
			continue
		}
		annexB = append(annexB, f.Payload...)
		stamps = append(stamps, ts)
	}
	if n := len(stamps); n > 1 {
		span := float64(stamps[n-1]-stamps[0]) / 90000
		fps = float64(n-1) / span
		t.Logf("phone sent %d whole pictures over %.2f s of RTP time: %.2f fps", n, span, fps)
	}
	file := filepath.Join(t.TempDir(), "source.h264")
	if err := os.WriteFile(file, annexB, 0o644); err != nil {
		t.Fatal(err)
	}
	frames := testenv.FrameLuma(t, file)
	if len(frames) != len(stamps) {
		return nil, "ffmpeg decoded a different number of pictures than were sent", drift, fps
	}
	for _, i := range testenv.FlashOnsets(frames) {
		at := vc.at(stamps[i])
		best := math.Inf(1)
		for _, o := range onsets {
			if math.Abs(o-at) < math.Abs(best) {
				best = o - at
			}
		}
		if math.Abs(best) <= 0.5 {
			offsets = append(offsets, time.Duration(best*float64(time.Second)).Round(100*time.Microsecond))
		}
	}
	if len(offsets) == 0 {
		return nil, "no flash matched to a tone onset", drift, fps
	}
	return offsets, "", drift, fps
}

// medianDuration returns the median of d (zero if empty).
func medianDuration(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
