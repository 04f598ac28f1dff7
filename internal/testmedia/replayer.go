package testmedia

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/rtcpx"
	"github.com/sipstream/sipstream/media/rtpaudio"
	"github.com/sipstream/sipstream/media/rtph264"
)

// ReplayerConfig says what a Replayer sends. The zero value sends
// nothing.
type ReplayerConfig struct {
	// Audio is the audio codec: media.CodecPCMA sends a tone (payload
	// type 8), media.CodecOpus the silent 20 ms Opus frame (payload type
	// 111). CodecUnknown (zero) means no audio.
	Audio media.Codec
	// ToneHz is the PCMA tone's frequency. Zero means 1000 Hz.
	ToneHz float64
	// Amplitude is the PCMA tone's amplitude (full scale 1). Zero means
	// 0.5.
	Amplitude float64
	// Burst, when set, plays the tone only for the first Burst of every
	// second and silence otherwise: each IDR of the clip (one a second)
	// and the onset of a tone burst share a capture instant. Zero means a
	// steady tone.
	Burst time.Duration
	// Video sends the H.264 test clip (ClipAccessUnits, an IDR every
	// second) at 25 fps, payload type 96, looping.
	Video bool
	// RTCP sends RTCP sender reports every second for both streams on one
	// NTP clock with one CNAME (RFC 3550 §6.4.1, what lip sync needs),
	// from a socket on the port after each RTP socket to the port after
	// each destination (the RTP sockets are then on even ports).
	RTCP bool
}

// Replayer plays a phone's media over RTP at real-time pace on an absolute
// schedule (a late wake-up sends what is due at once rather than
// drifting): 20 ms audio packets and 25 fps video, each stream from its
// own loopback socket. It exists because sipp 3.6.1 cannot play an audio
// and a video pcap in one call.
type Replayer struct {
	cfg ReplayerConfig
	// AudioConn and VideoConn are the RTP sockets (nil for a stream not
	// sent); AudioRTCP and VideoRTCP the RTCP ones (with RTCP).
	AudioConn, VideoConn *net.UDPConn
	AudioRTCP, VideoRTCP *net.UDPConn
}

// NewReplayer opens the replayer's sockets on 127.0.0.1. Close closes
// them.
func NewReplayer(cfg ReplayerConfig) (*Replayer, error) {
	r := &Replayer{cfg: cfg}
	if cfg.ToneHz == 0 {
		r.cfg.ToneHz = 1000
	}
	if cfg.Amplitude == 0 {
		r.cfg.Amplitude = 0.5
	}
	switch cfg.Audio {
	case media.CodecUnknown, media.CodecPCMA, media.CodecOpus:
	default:
		return nil, fmt.Errorf("testmedia: replayer audio codec %s: want PCMA or Opus", cfg.Audio)
	}
	var err error
	if cfg.Audio != media.CodecUnknown {
		if r.AudioConn, r.AudioRTCP, err = listen(cfg.RTCP); err != nil {
			return nil, err
		}
	}
	if cfg.Video {
		if r.VideoConn, r.VideoRTCP, err = listen(cfg.RTCP); err != nil {
			r.Close()
			return nil, err
		}
	}
	return r, nil
}

// listen opens an RTP socket on 127.0.0.1 and, with rtcp, its RTCP socket
// on the next port (the RTP port even, RFC 3550 §11).
func listen(withRTCP bool) (*net.UDPConn, *net.UDPConn, error) {
	lo := net.IPv4(127, 0, 0, 1)
	for range 200 {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: lo})
		if err != nil {
			return nil, nil, err
		}
		if !withRTCP {
			return c, nil, nil
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 {
			c.Close()
			continue
		}
		c2, err := net.ListenUDP("udp4", &net.UDPAddr{IP: lo, Port: port + 1})
		if err != nil {
			c.Close()
			continue
		}
		return c, c2, nil
	}
	return nil, nil, fmt.Errorf("testmedia: no free even/odd UDP port pair on 127.0.0.1")
}

// Close closes the sockets.
func (r *Replayer) Close() {
	for _, c := range []*net.UDPConn{r.AudioConn, r.AudioRTCP, r.VideoConn, r.VideoRTCP} {
		if c != nil {
			c.Close()
		}
	}
}

// AudioPort is the audio RTP socket's port (what an SDP answer
// advertises), zero without audio.
func (r *Replayer) AudioPort() int { return port(r.AudioConn) }

// VideoPort is the video RTP socket's port, zero without video.
func (r *Replayer) VideoPort() int { return port(r.VideoConn) }

func port(c *net.UDPConn) int {
	if c == nil {
		return 0
	}
	return c.LocalAddr().(*net.UDPAddr).Port
}

// The replayer's stream identities.
const (
	replayTick      = 20 * time.Millisecond
	replayAudioSSRC = 0x5e2e00a1
	replayVideoSSRC = 0x5e2e00b1
	replayAudioTS0  = 80000
	replayVideoTS0  = 900000
	replayCNAME     = "testmedia-replayer@127.0.0.1"
)

// Run sends until ctx ends: audio to audioDst, video to videoDst (RTCP to
// the port after each, with RTCP; a nil destination sends nothing of that
// stream). It returns the number of audio packets and video frames sent,
// and the first sending error.
func (r *Replayer) Run(ctx context.Context, audioDst, videoDst *net.UDPAddr) (audioPackets, videoFrames int, err error) {
	perSecond := int(time.Second / replayTick)
	burstTicks := int(r.cfg.Burst / replayTick)
	var enc *rtph264.Encoder
	var aus []AccessUnit
	if r.cfg.Video && videoDst != nil {
		if enc, err = rtph264.NewEncoder(rtph264.EncoderConfig{PayloadType: 96, SSRC: replayVideoSSRC, InitialSequenceNumber: 7000}); err != nil {
			return 0, 0, err
		}
		aus = ClipAccessUnits()
	}
	sendAudio := r.cfg.Audio != media.CodecUnknown && audioDst != nil
	pt, rate := uint8(8), 8000
	var opusSilence []byte
	if r.cfg.Audio == media.CodecOpus {
		pt, rate = 111, 48000
		if opusSilence, err = rtpaudio.Silence(rtpaudio.Format{Codec: media.CodecOpus}, replayTick); err != nil {
			return 0, 0, err
		}
	}
	samples := rate / perSecond
	silence := make([]byte, samples)
	for i := range silence {
		silence[i] = g711.LinearToALaw(0)
	}
	apkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SSRC: replayAudioSSRC, SequenceNumber: 3000,
		Timestamp: replayAudioTS0, Marker: true}}
	var payload []byte
	var aOctets, vPackets, vOctets uint32
	start := time.Now()
	for n := 0; ; n++ {
		at := start.Add(time.Duration(n) * replayTick)
		if d := time.Until(at); d > 0 {
			select {
			case <-ctx.Done():
				return audioPackets, videoFrames, nil
			case <-time.After(d):
			}
		} else if ctx.Err() != nil {
			return audioPackets, videoFrames, nil
		}
		// Sender reports first, every second, for the instant of this
		// tick: both streams map to the same NTP time.
		if r.cfg.RTCP && n%perSecond == 0 {
			ntp := rtcpx.NTP(at)
			if sendAudio {
				if err := r.senderReport(r.AudioRTCP, audioDst, replayAudioSSRC, ntp, uint32(replayAudioTS0+n*samples), uint32(audioPackets), aOctets); err != nil {
					return audioPackets, videoFrames, err
				}
			}
			if enc != nil {
				if err := r.senderReport(r.VideoRTCP, videoDst, replayVideoSSRC, ntp, uint32(replayVideoTS0+n*1800), vPackets, vOctets); err != nil {
					return audioPackets, videoFrames, err
				}
			}
		}
		if sendAudio {
			switch {
			case r.cfg.Audio == media.CodecOpus:
				payload = opusSilence
			case r.cfg.Burst == 0 || n%perSecond < burstTicks:
				payload = g711.EncodeALaw(payload[:0], Tone(r.cfg.ToneHz, rate, n*samples, samples, r.cfg.Amplitude))
			default:
				payload = append(payload[:0], silence...)
			}
			apkt.Payload = payload
			b, err := apkt.Marshal()
			if err != nil {
				return audioPackets, videoFrames, err
			}
			if _, err := r.AudioConn.WriteToUDP(b, audioDst); err != nil {
				return audioPackets, videoFrames, err
			}
			audioPackets++
			aOctets += uint32(len(payload))
			apkt.Marker = false
			apkt.SequenceNumber++
			apkt.Timestamp += uint32(samples)
		}
		// Video: a picture every other tick (25 fps).
		if enc != nil && n%2 == 0 {
			f := n / 2
			pkts, err := enc.Encode(aus[f%len(aus)].NALUs, uint32(replayVideoTS0+f*3600))
			if err != nil {
				return audioPackets, videoFrames, err
			}
			for _, p := range pkts {
				b, err := p.Marshal()
				if err != nil {
					return audioPackets, videoFrames, err
				}
				if _, err := r.VideoConn.WriteToUDP(b, videoDst); err != nil {
					return audioPackets, videoFrames, err
				}
				vPackets++
				vOctets += uint32(len(p.Payload))
			}
			videoFrames++
		}
	}
}

// senderReport sends an SR with a CNAME from conn to the port after dst.
func (r *Replayer) senderReport(conn *net.UDPConn, dst *net.UDPAddr, ssrc uint32, ntp uint64, ts, packets, octets uint32) error {
	sdes := &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: ssrc,
		Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: replayCNAME}}}}}
	b, err := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: ssrc, NTPTime: ntp, RTPTime: ts,
		PacketCount: packets, OctetCount: octets}, sdes})
	if err != nil {
		return err
	}
	_, err = conn.WriteToUDP(b, &net.UDPAddr{IP: dst.IP, Port: dst.Port + 1})
	return err
}
