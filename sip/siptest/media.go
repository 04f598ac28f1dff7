package siptest

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtcpx"
	"github.com/sipstream/sipstream/media/rtpaudio"
	"github.com/sipstream/sipstream/media/rtpdtmf"
)

// rtpStream is one media stream of a call: an RTP socket on an even port
// and an RTCP socket on the next one (unused with rtcp-mux).
type rtpStream struct {
	c        *PeerCall
	kind     media.Kind
	rtp      *net.UDPConn
	rtcp     *net.UDPConn
	keyframe atomic.Bool
	video    atomic.Pointer[videoOut] // the video sender, for retransmissions
	once     sync.Once
	dtmf     chan dtmfJob // SendDTMF requests, served by the audio sender

	spec media.StreamSpec // guarded by c.p.n.mu

	srtp srtpState

	// lastSR is the caller's last Sender Report on this stream, echoed in
	// our reports (LSR/DLSR) so that the caller can measure the round
	// trip, as a phone's RTCP does.
	srMu      sync.Mutex
	srSSRC    uint32
	srMiddle  uint32 // middle 32 bits of its NTP timestamp
	srArrival time.Time
}

// reception returns the report block about the caller's last SR, if any.
func (s *rtpStream) reception(now time.Time) []rtcp.ReceptionReport {
	s.srMu.Lock()
	defer s.srMu.Unlock()
	if s.srArrival.IsZero() {
		return nil
	}
	d := now.Sub(s.srArrival)
	return []rtcp.ReceptionReport{{SSRC: s.srSSRC, LastSenderReport: s.srMiddle,
		Delay: uint32(d/time.Second<<16) + uint32(d%time.Second*65536/time.Second)}}
}

// srtpState holds the SRTP contexts made for a spec's keys (pion/srtp
// contexts are not safe for concurrent use: mu guards them).
type srtpState struct {
	mu      sync.Mutex
	crypto  *media.Crypto // the keys in and out were made for
	in, out *srtp.Context
}

// contexts returns the stream's SRTP contexts for spec's keys, nil when
// spec is plain RTP; s.srtp.mu must be held.
func (s *rtpStream) contexts(spec media.StreamSpec) (in, out *srtp.Context) {
	st := &s.srtp
	if spec.Crypto == nil {
		return nil, nil
	}
	if st.crypto != spec.Crypto {
		st.crypto, st.in, st.out = spec.Crypto, nil, nil
		if p, ok := srtpProfiles[spec.Crypto.Suite]; ok {
			kl, _ := p.KeyLen()
			if k := spec.Crypto.RemoteKey; len(k) > kl {
				st.in, _ = srtp.CreateContext(k[:kl], k[kl:], p)
			}
			if k := spec.Crypto.LocalKey; len(k) > kl {
				st.out, _ = srtp.CreateContext(k[:kl], k[kl:], p)
			}
		}
	}
	return st.in, st.out
}

// srtpProfiles are the SDES suites sip/sdp negotiates.
var srtpProfiles = map[string]srtp.ProtectionProfile{
	"AES_CM_128_HMAC_SHA1_80": srtp.ProtectionProfileAes128CmHmacSha1_80,
	"AES_CM_128_HMAC_SHA1_32": srtp.ProtectionProfileAes128CmHmacSha1_32,
	"AEAD_AES_128_GCM":        srtp.ProtectionProfileAeadAes128Gcm,
	"AEAD_AES_256_GCM":        srtp.ProtectionProfileAeadAes256Gcm,
}

// writeTo sends a plain RTP or RTCP packet from conn to addr, encrypted
// when spec has SRTP keys.
func (s *rtpStream) writeTo(conn *net.UDPConn, b []byte, rtcp bool, spec media.StreamSpec, addr netip.AddrPort) error {
	if spec.Crypto != nil {
		s.srtp.mu.Lock()
		_, out := s.contexts(spec)
		var err error
		switch {
		case out == nil:
			err = errors.New("siptest: no SRTP context")
		case rtcp:
			b, err = out.EncryptRTCP(nil, b, nil)
		default:
			b, err = out.EncryptRTP(nil, b, nil)
		}
		s.srtp.mu.Unlock()
		if err != nil {
			return err
		}
	}
	_, err := conn.WriteToUDPAddrPort(b, addr)
	return err
}

// decrypt returns the plain packet of an SRTP (or SRTCP) packet b when
// spec has SRTP keys, b itself otherwise, and false when it fails
// authentication.
func (s *rtpStream) decrypt(b []byte, rtcp bool, spec media.StreamSpec) ([]byte, bool) {
	if spec.Crypto == nil {
		return b, true
	}
	s.srtp.mu.Lock()
	defer s.srtp.mu.Unlock()
	in, _ := s.contexts(spec)
	if in == nil {
		return nil, false
	}
	var out []byte
	var err error
	if rtcp {
		out, err = in.DecryptRTCP(nil, b, nil)
	} else {
		out, err = in.DecryptRTP(nil, b, nil)
	}
	return out, err == nil
}

func newStream(c *PeerCall, k media.Kind) (*rtpStream, error) {
	r, rc, err := allocPair(c.p.ip)
	if err != nil {
		return nil, err
	}
	return &rtpStream{c: c, kind: k, rtp: r, rtcp: rc, dtmf: make(chan dtmfJob)}, nil
}

// allocPair binds an even RTP port and the odd RTCP port after it.
func allocPair(ip netip.Addr) (*net.UDPConn, *net.UDPConn, error) {
	for range 100 {
		r, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			return nil, nil, err
		}
		port := r.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 || port >= 65535 {
			_ = r.Close()
			continue
		}
		rc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port+1))))
		if err != nil {
			_ = r.Close()
			continue
		}
		return r, rc, nil
	}
	return nil, nil, errors.New("siptest: no free RTP/RTCP port pair")
}

func (s *rtpStream) port() int {
	if s == nil {
		return 0
	}
	return s.rtp.LocalAddr().(*net.UDPAddr).Port
}

func (s *rtpStream) close() {
	if s == nil {
		return
	}
	s.once.Do(func() {
		_ = s.rtp.Close()
		_ = s.rtcp.Close()
	})
}

func (s *rtpStream) requestKeyframe() { s.keyframe.Store(true) }

func (s *rtpStream) currentSpec() media.StreamSpec {
	s.c.mu().Lock()
	defer s.c.mu().Unlock()
	return s.spec
}

// readRTP records what arrives on the RTP socket until it is closed.
func (s *rtpStream) readRTP() {
	buf := make([]byte, 2048)
	var dtmf *rtpdtmf.Decoder
	var pkt rtp.Packet
	for {
		n, _, err := s.rtp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		if rtcpx.IsRTCP(b) {
			s.handleRTCP(b)
			continue
		}
		spec := s.currentSpec()
		var ok bool
		if b, ok = s.decrypt(b, false, spec); !ok {
			continue
		}
		if pkt.Unmarshal(b) != nil {
			continue
		}
		var format media.PayloadFormat
		for _, f := range spec.Formats {
			if f.PayloadType == pkt.PayloadType {
				format = f
			}
		}
		var digit rune
		var samples []int16
		switch format.Codec {
		case media.CodecTelephoneEvent:
			if dtmf == nil {
				dtmf, _ = rtpdtmf.NewDecoder(rtpdtmf.DecoderConfig{ClockRate: format.ClockRate})
			}
			if dtmf != nil {
				if ev, err := dtmf.Decode(&pkt); err == nil {
					digit = rtpdtmf.Digit(ev.Code)
				}
			}
		case media.CodecPCMA, media.CodecPCMU:
			samples = make([]int16, len(pkt.Payload))
			for i, x := range pkt.Payload {
				if format.Codec == media.CodecPCMA {
					samples[i] = alawToLinear(x)
				} else {
					samples[i] = ulawToLinear(x)
				}
			}
		}
		c := s.c
		c.mu().Lock()
		c.rtp[s.kind]++
		if digit != 0 {
			c.dtmf = append(c.dtmf, digit)
		}
		if len(samples) > 0 && len(c.audio) < maxAudioSamples {
			c.audio = append(c.audio, samples...)
		}
		c.p.n.broadcast()
		c.mu().Unlock()
	}
}

// readRTCP records what arrives on the RTCP socket until it is closed.
func (s *rtpStream) readRTCP() {
	buf := make([]byte, 2048)
	for {
		n, _, err := s.rtcp.ReadFromUDP(buf)
		if err != nil {
			return
		}
		s.handleRTCP(buf[:n])
	}
}

func (s *rtpStream) handleRTCP(b []byte) {
	b, ok := s.decrypt(b, true, s.currentSpec())
	if !ok {
		return
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return
	}
	keyframe := false
	var nacks []*rtcp.TransportLayerNack
	c := s.c
	c.mu().Lock()
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.SenderReport:
			c.rtcp.SenderReports++
			s.srMu.Lock()
			s.srSSRC, s.srMiddle, s.srArrival = p.SSRC, uint32(p.NTPTime>>16), time.Now()
			s.srMu.Unlock()
		case *rtcp.ReceiverReport:
			c.rtcp.ReceiverReports++
		case *rtcp.PictureLossIndication:
			c.rtcp.PLI++
			keyframe = true
		case *rtcp.FullIntraRequest:
			c.rtcp.FIR++
			keyframe = true
		case *rtcp.TransportLayerNack:
			c.rtcp.NACK++
			nacks = append(nacks, p)
		case *rtcp.Goodbye:
			c.rtcp.Goodbye++
		}
	}
	c.p.n.broadcast()
	c.mu().Unlock()
	if keyframe {
		s.requestKeyframe()
	}
	for _, n := range nacks {
		s.retransmit(n)
	}
}

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// sender is the state of one outgoing stream.
type sender struct {
	s       *rtpStream
	ssrc    uint32
	clock   uint32
	ts0     uint32
	start   time.Time
	packets uint32
	octets  uint32
}

// write sends pkt to the stream's current remote address when the
// direction allows it, and reports whether it did.
func (sd *sender) write(pkt *rtp.Packet, spec media.StreamSpec) bool {
	b, err := pkt.Marshal()
	if err != nil {
		return false
	}
	return sd.writeBytes(b, len(pkt.Payload), spec)
}

// writeBytes is write for a marshalled packet with a payload of that many
// bytes.
func (sd *sender) writeBytes(b []byte, payload int, spec media.StreamSpec) bool {
	if !canSend(spec) {
		return false
	}
	if err := sd.s.writeTo(sd.s.rtp, b, false, spec, spec.Remote); err != nil {
		return false
	}
	sd.packets++
	sd.octets += uint32(payload)
	return true
}

// canSend reports whether the spec lets the peer send RTP: a sending
// direction and a usable remote address.
func canSend(spec media.StreamSpec) bool {
	return spec.Direction.Sends() && spec.Remote.IsValid() && !spec.Remote.Addr().IsUnspecified()
}

// sendSR sends a Sender Report for the stream (RFC 3550 §6.4.1).
func (sd *sender) sendSR(spec media.StreamSpec) {
	if sd.packets == 0 || !spec.Direction.Sends() {
		return
	}
	now := time.Now()
	elapsed := now.Sub(sd.start)
	sr := &rtcp.SenderReport{
		SSRC:        sd.ssrc,
		NTPTime:     rtcpx.NTP(now),
		RTPTime:     sd.ts0 + uint32(elapsed.Seconds()*float64(sd.clock)),
		PacketCount: sd.packets,
		OctetCount:  sd.octets,
		Reports:     sd.s.reception(now),
	}
	b, err := sr.Marshal()
	if err != nil {
		return
	}
	if spec.RTCPMux {
		_ = sd.s.writeTo(sd.s.rtp, b, true, spec, spec.Remote)
	} else if spec.RemoteRTCP.IsValid() && !spec.RemoteRTCP.Addr().IsUnspecified() {
		_ = sd.s.writeTo(sd.s.rtcp, b, true, spec, spec.RemoteRTCP)
	}
}

// send streams the script's media at real-time pace until the call's
// media stops.
func (s *rtpStream) send(script Script) {
	spec := s.currentSpec()
	var format media.PayloadFormat
	for _, f := range spec.Formats {
		if f.Codec != media.CodecTelephoneEvent && f.Codec != media.CodecRTX {
			format = f
			break
		}
	}
	sd := &sender{s: s, ssrc: randUint32(), clock: format.ClockRate, ts0: randUint32(), start: time.Now()}
	var tick func(media.StreamSpec)
	var interval time.Duration
	switch format.Codec {
	case media.CodecPCMA, media.CodecPCMU, media.CodecOpus:
		tick, interval = s.audioSender(sd, format, script)
	case media.CodecH264:
		if script.LiveVideo != nil {
			tick, interval = s.liveVideoSender(sd, format, script)
		} else {
			tick, interval = s.videoSender(sd, format, script)
		}
	default:
		return
	}
	if tick == nil {
		return
	}
	srEvery := script.SRInterval
	if srEvery <= 0 {
		srEvery = time.Second
	}
	var srC <-chan time.Time
	if script.SendSR {
		t := time.NewTicker(srEvery)
		defer t.Stop()
		srC = t.C
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	tick(spec)
	sent := 1
	for {
		select {
		case <-ticker.C:
			// Catch up when the goroutine ran late (a loaded machine
			// drops ticker ticks), so that RTP timestamps keep following
			// the wall clock the SRs map them to; bursts are bounded.
			due := int(time.Since(sd.start)/interval) + 1
			spec := s.currentSpec()
			for n := 0; sent < due && n < maxBurst && !stopped(s.c.mediaStop); n++ {
				tick(spec)
				sent++
			}
		case <-srC:
			sd.sendSR(s.currentSpec())
		case <-s.c.mediaStop:
			return
		case <-s.c.p.closing:
			return
		}
	}
}

func stopped(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// maxBurst bounds the packets (audio) or frames (video) a sender emits at
// once to catch up after running late.
const maxBurst = 25

// payloadType returns the current payload type of codec in spec (it may
// change with a re-INVITE), or fallback.
func payloadType(spec media.StreamSpec, codec media.Codec, fallback uint8) uint8 {
	for _, f := range spec.Formats {
		if f.Codec == codec {
			return f.PayloadType
		}
	}
	return fallback
}

func (s *rtpStream) audioSender(sd *sender, format media.PayloadFormat, script Script) (func(media.StreamSpec), time.Duration) {
	const frame = 20 * time.Millisecond
	enc, err := rtpaudio.NewEncoder(rtpaudio.EncoderConfig{
		Format:      rtpaudio.Format{Codec: format.Codec, ClockRate: format.ClockRate},
		PayloadType: format.PayloadType, SSRC: sd.ssrc,
		InitialSequenceNumber: uint16(randUint32()), InitialTimestamp: sd.ts0,
	})
	if err != nil {
		return nil, 0
	}
	freq := script.ToneHz
	if freq == 0 {
		freq = 1000
	}
	samples := int(format.ClockRate) * int(frame) / int(time.Second)
	var silence []byte
	if format.Codec == media.CodecOpus {
		if silence, err = rtpaudio.Silence(rtpaudio.Format{Codec: media.CodecOpus}, frame); err != nil {
			return nil, 0
		}
	}
	offset := 0
	payload := make([]byte, samples)
	var ev *dtmfState
	return func(spec media.StreamSpec) {
		if ev == nil {
			select {
			case job := <-s.dtmf:
				ev = &dtmfState{job: job}
			default:
			}
		}
		if ev != nil {
			busy, done := ev.tick(sd, enc, spec, frame)
			if done {
				ev = nil
			}
			if busy {
				offset += samples
				return // no audio during an event (RFC 4733 §2.5.1.2)
			}
		}
		if !spec.Direction.Sends() || !script.Audio {
			enc.Advance(frame)
			offset += samples
			return
		}
		p := silence
		if format.Codec != media.CodecOpus {
			var pcm []int16
			if n := len(script.AudioPCM); n > 0 {
				pcm = make([]int16, samples)
				for i := range pcm {
					pcm[i] = script.AudioPCM[(offset+i)%n]
				}
			} else {
				pcm = testmedia.Tone(freq, int(format.ClockRate), offset, samples, 0.5)
			}
			for i, x := range pcm {
				if format.Codec == media.CodecPCMA {
					payload[i] = linearToALaw(x)
				} else {
					payload[i] = linearToULaw(x)
				}
			}
			p = payload
		}
		offset += samples
		pkt, err := enc.Encode(p)
		if err != nil {
			return
		}
		pkt.PayloadType = payloadType(spec, format.Codec, format.PayloadType)
		sd.write(pkt, spec)
	}, frame
}

// dtmfJob is a SendDTMF request.
type dtmfJob struct {
	digits []rune
	done   chan error
}

// dtmfState sends a dtmfJob's events from the audio sender, tick by tick.
type dtmfState struct {
	job   dtmfJob
	idx   int
	enc   *rtpdtmf.Encoder
	sched []rtpdtmf.TimedPacket
	next  int
	start time.Time
	pause time.Time
}

const (
	dtmfDuration = 100 * time.Millisecond
	dtmfPause    = 80 * time.Millisecond
)

// tick sends what is due. busy says an event is being sent (no audio
// meanwhile); done that the job finished (its done channel was told).
func (d *dtmfState) tick(sd *sender, enc *rtpaudio.Encoder, spec media.StreamSpec, frame time.Duration) (busy, done bool) {
	now := time.Now()
	if d.sched == nil {
		if now.Before(d.pause) {
			return false, false
		}
		if d.idx == len(d.job.digits) {
			d.job.done <- nil
			return false, true
		}
		var te media.PayloadFormat
		for _, f := range spec.Formats {
			if f.Codec == media.CodecTelephoneEvent {
				te = f
				break
			}
		}
		if te.Codec == 0 {
			d.job.done <- fmt.Errorf("siptest: no telephone-event negotiated")
			return false, true
		}
		if d.enc == nil {
			var err error
			if d.enc, err = rtpdtmf.NewEncoder(rtpdtmf.EncoderConfig{PayloadType: te.PayloadType, SSRC: sd.ssrc, ClockRate: te.ClockRate}); err != nil {
				d.job.done <- err
				return false, true
			}
		}
		code, _ := rtpdtmf.EventCode(d.job.digits[d.idx])
		sched, err := d.enc.Encode(rtpdtmf.Event{Code: code, Duration: dtmfDuration, Volume: 10}, enc.Timestamp())
		if err != nil {
			d.job.done <- err
			return false, true
		}
		d.sched, d.next, d.start = sched, 0, now
	}
	for d.next < len(d.sched) && now.Sub(d.start) >= d.sched[d.next].At {
		pkt := d.sched[d.next].Packet
		enc.Stamp(&pkt)
		sd.write(&pkt, spec)
		d.next++
	}
	if d.next == len(d.sched) {
		// Audio resumes after the time the event took, in whole frames.
		elapsed := now.Sub(d.start) + frame
		enc.Advance(elapsed - elapsed%frame)
		d.sched = nil
		d.idx++
		d.pause = now.Add(dtmfPause)
	}
	return true, false
}
