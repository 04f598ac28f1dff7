package main

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/sipstream/sipstream/media/rtcpx"
)

// sentRing is how many frames' send times a call remembers (10 s at
// 25 fps): a frame that reaches the RTMP receiver later than that cannot be
// matched.
const sentRing = 256

// srInterval is the time between two RTCP Sender Reports of a stream; the
// first goes out srFirst after the call's media starts.
const (
	srInterval = time.Second
	srFirst    = 200 * time.Millisecond
)

// sendStream is one RTP stream of a call (owned by the sender goroutine
// once the call is added).
type sendStream struct {
	pt        uint8
	ssrc      uint32
	seq       uint16
	tsBase    uint32
	rtp, rtcp *net.UDPAddr
	packets   uint32
	octets    uint32
}

// sendCall is the media of one call: where it goes and how far it got.
// Only the sender goroutine touches the counters; sent is read by the
// receiver.
type sendCall struct {
	idx          int
	start        int64 // media time zero, ns on the sender's clock
	audio, video sendStream
	audioN       int64 // audio packets sent
	videoN       int64 // frames sent
	nextSR       int64
	sent         [sentRing]atomic.Int64 // send time of frame n at n%sentRing (ns)
	stopped      atomic.Bool
}

// sentAt returns when frame n's first packet was sent (ns on the sender's
// clock), or false when it is not remembered.
func (c *sendCall) sentAt(n int64) (int64, bool) {
	if n < 0 {
		return 0, false
	}
	t := c.sent[n%sentRing].Load()
	ideal := c.start + n*frameDuration
	if t == 0 || t < ideal-int64(time.Second) || t > ideal+5*int64(time.Second) {
		return 0, false
	}
	return t, true
}

// batch collects the datagrams of one socket for one sendmmsg: each is an
// RTP (or RTCP) header written into the arena and, for video, the clip's
// shared payload (vectored I/O: the payload is never copied).
type batch struct {
	pc    *ipv4.PacketConn
	msgs  []ipv4.Message
	bufs  [][]byte
	n     int
	arena []byte
	used  int
	sent  uint64
	errs  uint64
	lastE error
}

func newBatch(c net.PacketConn, size int) *batch {
	b := &batch{pc: ipv4.NewPacketConn(c), msgs: make([]ipv4.Message, size), bufs: make([][]byte, 2*size), arena: make([]byte, 64<<10)}
	return b
}

// next reserves a datagram to addr made of hdrLen bytes written by the
// caller into the returned slice, followed by payload (nil for none).
func (b *batch) next(addr *net.UDPAddr, hdrLen int, payload []byte) []byte {
	if b.n == len(b.msgs) || b.used+hdrLen > len(b.arena) {
		b.flush()
	}
	hdr := b.arena[b.used : b.used+hdrLen : b.used+hdrLen]
	b.used += hdrLen
	m := &b.msgs[b.n]
	if payload == nil {
		m.Buffers = b.bufs[2*b.n : 2*b.n+1]
	} else {
		m.Buffers = b.bufs[2*b.n : 2*b.n+2]
		m.Buffers[1] = payload
	}
	m.Buffers[0] = hdr
	m.Addr = addr
	b.n++
	return hdr
}

// flush sends what was collected. A datagram that fails is counted and
// skipped.
func (b *batch) flush() {
	done := 0
	for done < b.n {
		k, err := b.pc.WriteBatch(b.msgs[done:b.n], 0)
		if err != nil {
			b.errs++
			b.lastE = err
			k = max(k, 1)
		}
		done += k
	}
	b.sent += uint64(b.n)
	for i := range b.msgs[:b.n] {
		b.msgs[i].Addr = nil
	}
	b.n, b.used = 0, 0
}

// sender sends the media of every call from one goroutine: every 20 ms it
// sends each call's due audio packets and video frames on their real
// timing, and RTCP Sender Reports once a second per stream.
type sender struct {
	clip    *clip
	tone    []byte
	silence []byte // the audio marker (see audioMarkEvery)
	epoch   time.Time

	audioRTP, audioRTCP, videoRTP, videoRTCP net.PacketConn
	ba, bac, bv, bvc                         *batch

	mu     sync.Mutex
	calls  []*sendCall // live
	all    []*sendCall // by idx, every call ever made
	active atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup
}

// newSender opens the sender's sockets on ip (audio RTP/RTCP and video
// RTP/RTCP, each an even/odd pair) and starts its goroutines.
func newSender(c *clip, ip string) (*sender, error) {
	s := &sender{clip: c, tone: tonePayload(), silence: silencePayload(), epoch: time.Now(), stop: make(chan struct{})}
	var err error
	if s.audioRTP, s.audioRTCP, err = listenPair(ip); err != nil {
		return nil, err
	}
	if s.videoRTP, s.videoRTCP, err = listenPair(ip); err != nil {
		s.audioRTP.Close()
		s.audioRTCP.Close()
		return nil, err
	}
	s.ba, s.bac = newBatch(s.audioRTP, 256), newBatch(s.audioRTCP, 64)
	s.bv, s.bvc = newBatch(s.videoRTP, 1024), newBatch(s.videoRTCP, 64)
	for _, pc := range []net.PacketConn{s.audioRTP, s.audioRTCP, s.videoRTP, s.videoRTCP} {
		s.wg.Add(1)
		go s.drain(pc)
	}
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// listenPair binds an even RTP port and the odd RTCP port above it.
func listenPair(ip string) (net.PacketConn, net.PacketConn, error) {
	for range 100 {
		a, err := net.ListenPacket("udp4", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, nil, err
		}
		port := a.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 || port == 65534 {
			a.Close()
			continue
		}
		b, err := net.ListenPacket("udp4", net.JoinHostPort(ip, fmt.Sprint(port+1)))
		if err != nil {
			a.Close()
			continue
		}
		_ = setBuffers(a)
		return a, b, nil
	}
	return nil, nil, errors.New("loadtest: no free even/odd UDP port pair")
}

// setBuffers enlarges the send buffer so that a tick's batch of IDR
// packets of many calls is not dropped locally.
func setBuffers(pc net.PacketConn) error {
	if u, ok := pc.(*net.UDPConn); ok {
		return u.SetWriteBuffer(4 << 20)
	}
	return nil
}

// ports returns the audio and video RTP ports (RTCP is one above each).
func (s *sender) ports() (audio, video int) {
	return s.audioRTP.LocalAddr().(*net.UDPAddr).Port, s.videoRTP.LocalAddr().(*net.UDPAddr).Port
}

// now is the sender's clock: monotonic ns since the sender started.
func (s *sender) now() int64 { return int64(time.Since(s.epoch)) }

// newCall registers a call whose media goes to the given RTP addresses
// (RTCP one port above each) with the given payload types. It does not
// send until start.
func (s *sender) newCall(audioRTP, videoRTP *net.UDPAddr, audioPT, videoPT uint8) *sendCall {
	c := &sendCall{}
	c.audio = sendStream{pt: audioPT, ssrc: rand32(), seq: uint16(rand32()), tsBase: rand32(), rtp: audioRTP,
		rtcp: &net.UDPAddr{IP: audioRTP.IP, Port: audioRTP.Port + 1}}
	c.video = sendStream{pt: videoPT, ssrc: rand32(), seq: uint16(rand32()), tsBase: rand32(), rtp: videoRTP,
		rtcp: &net.UDPAddr{IP: videoRTP.IP, Port: videoRTP.Port + 1}}
	s.mu.Lock()
	c.idx = len(s.all)
	s.all = append(s.all, c)
	s.mu.Unlock()
	return c
}

// lookup returns the call with index idx, or nil.
func (s *sender) lookup(idx int) *sendCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	if idx < 0 || idx >= len(s.all) {
		return nil
	}
	return s.all[idx]
}

// start makes c's media start now.
func (s *sender) start(c *sendCall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.start = s.now()
	c.nextSR = c.start + int64(srFirst)
	s.calls = append(s.calls, c)
	s.active.Add(1)
}

// stopAll stops every call's media.
func (s *sender) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.calls {
		c.stopped.Store(true)
	}
}

// stats returns the datagrams sent and the send errors so far.
func (s *sender) stats() (sent, errs uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range []*batch{s.ba, s.bac, s.bv, s.bvc} {
		sent += b.sent
		errs += b.errs
	}
	return sent, errs
}

// close stops the goroutines and closes the sockets.
func (s *sender) close() {
	close(s.stop)
	for _, pc := range []net.PacketConn{s.audioRTP, s.audioRTCP, s.videoRTP, s.videoRTCP} {
		pc.Close()
	}
	s.wg.Wait()
}

// drain reads and drops what the peers send back (RTCP receiver reports,
// keyframe requests, silence RTP): the load callee ignores it.
func (s *sender) drain(pc net.PacketConn) {
	defer s.wg.Done()
	buf := make([]byte, 2048)
	for {
		if _, _, err := pc.ReadFrom(buf); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}
}

func (s *sender) run() {
	defer s.wg.Done()
	t := time.NewTicker(audioPacket)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.tick()
		}
	}
}

// maxBehind is how far a call's media may lag its real timing (after a
// stall of the process) before it skips ahead instead of bursting.
const maxBehind = int64(500 * time.Millisecond)

// tick sends everything due; sender goroutine only.
func (s *sender) tick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	wall := s.epoch.Add(time.Duration(now))
	live := s.calls[:0]
	for _, c := range s.calls {
		if c.stopped.Load() {
			s.active.Add(-1)
			continue
		}
		live = append(live, c)
		s.sendCall(c, now, wall)
	}
	clear(s.calls[len(live):])
	s.calls = live
	s.ba.flush()
	s.bv.flush()
	s.bac.flush()
	s.bvc.flush()
}

func (s *sender) sendCall(c *sendCall, now int64, wall time.Time) {
	elapsed := now - c.start
	if due := elapsed / audioPacket; due-c.audioN > maxBehind/audioPacket {
		c.audioN = due
	}
	if due := elapsed / frameDuration; due-c.videoN > maxBehind/frameDuration {
		c.videoN = due
	}
	for c.audioN*audioPacket <= elapsed {
		a := &c.audio
		payload := s.tone
		if c.audioN%audioMarkEvery == 0 {
			payload = s.silence // at the media time of a marked picture
		}
		hdr := s.ba.next(a.rtp, rtpHeaderLen, payload)
		putRTPHeader(hdr, c.audioN == 0, a.pt, a.seq, a.tsBase+uint32(c.audioN*audioSamples), a.ssrc)
		a.seq++
		a.packets++
		a.octets += uint32(len(payload))
		c.audioN++
	}
	frames := s.clip.frames
	for c.videoN*frameDuration <= elapsed {
		v := &c.video
		f := &frames[c.videoN%int64(len(frames))]
		ts := v.tsBase + uint32(c.videoN*videoClock/clipFPS)
		c.sent[c.videoN%sentRing].Store(now)
		last := len(f.payloads) - 1
		for i, p := range f.payloads {
			var hdr []byte
			if i == f.marker {
				hdr = s.bv.next(v.rtp, rtpHeaderLen+len(p), nil)
				copy(hdr[rtpHeaderLen:], p)
				putMarker(hdr[rtpHeaderLen:], c.idx, c.videoN)
			} else {
				hdr = s.bv.next(v.rtp, rtpHeaderLen, p)
			}
			putRTPHeader(hdr, i == last, v.pt, v.seq, ts, v.ssrc)
			v.seq++
			v.packets++
			v.octets += uint32(len(p))
		}
		c.videoN++
	}
	if now >= c.nextSR {
		// The reports map the same instant to both streams' RTP clocks
		// (media time zero is c.start on both), which is what lets the
		// gateway put audio and video on one timeline.
		ntp := rtcpx.NTP(wall)
		a, v := &c.audio, &c.video
		putSR(s.bac.next(a.rtcp, srLen, nil), a.ssrc, ntp, a.tsBase+uint32(elapsed*audioClock/1e9), a.packets, a.octets)
		putSR(s.bvc.next(v.rtcp, srLen, nil), v.ssrc, ntp, v.tsBase+uint32(elapsed*videoClock/1e9), v.packets, v.octets)
		c.nextSR = now + int64(srInterval)
	}
}

func rand32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}
