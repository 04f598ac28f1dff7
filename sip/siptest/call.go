package siptest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"

	"github.com/sipstream/sipstream/media"
)

// EndReason says how a call ended.
type EndReason int

// End reasons.
const (
	// EndNone: the call has not ended.
	EndNone EndReason = iota
	// EndRemoteBye: the caller sent BYE.
	EndRemoteBye
	// EndLocalBye: the peer hung up (Hangup or Script.HangupAfter).
	EndLocalBye
	// EndCanceled: the caller sent CANCEL before the final response.
	EndCanceled
	// EndRejected: the peer sent a non-2xx final response (Script.Reject,
	// 488 for an unusable offer).
	EndRejected
	// EndFailed: no ACK for the 200 OK, or a transport error.
	EndFailed
	// EndClosed: the Peer was closed while the call was up.
	EndClosed
)

var endNames = [...]string{"none", "remote BYE", "local BYE", "canceled", "rejected", "failed", "closed"}

// String returns a short description ("remote BYE", ...).
func (r EndReason) String() string {
	if int(r) >= 0 && int(r) < len(endNames) {
		return endNames[r]
	}
	return "unknown"
}

// ErrCallEnded is returned by WaitBye when the call ended without a BYE
// from the caller, and by Hangup, Hold and Unhold on an ended call.
var ErrCallEnded = errors.New("siptest: call ended")

// RTCPStats counts the RTCP packets the peer received on a call.
type RTCPStats struct {
	SenderReports, ReceiverReports, PLI, FIR, NACK, Goodbye int
}

// maxAudioSamples bounds the decoded audio a call keeps (60 s at 8 kHz).
const maxAudioSamples = 60 * 8000

// PeerCall is one incoming call of a Peer and everything the peer received
// on it. All methods are safe for concurrent use.
type PeerCall struct {
	p      *Peer
	script Script
	callID string
	invite Request
	inv    *sip.Request // the INVITE with our To tag, for responses and in-dialog requests
	done   chan struct{}

	// Guarded by p.n.mu.
	end           EndReason
	answered      bool
	acked         bool
	answer        []byte
	specs         []media.StreamSpec
	streams       []*rtpStream
	byeReceived   bool
	bye           Request
	vanished      bool
	infos         []Request
	dtmf          []rune
	infoKeyframes int
	rtcp          RTCPStats
	video         VideoSendStats
	rtp           [3]int // by media.Kind
	audio         []int16
	reinvites     []Request
	refers        []Refer
	cseq          uint32
	sessID        uint64
	sessVer       uint64
	sending       bool
	mediaStop     chan struct{}
	stopOnce      sync.Once
	senders       sync.WaitGroup // RTP/RTCP sender goroutines

	// A call the peer placed (Peer.Call): its dialog as UAC, the INVITE
	// transaction kept to answer 2xx retransmissions with the ACK, and
	// the other side's SDP. Set before the call is returned.
	outgoing bool
	dlg      *uacDialog
	inviteTx sip.ClientTransaction // guarded by p.n.mu
	remote   []byte                // guarded by p.n.mu
	// late is the offer of our 200 OK to a delayed-offer INVITE, until
	// the ACK's answer; lateErr why that answer was refused.
	late    *lateOffer // guarded by p.n.mu
	lateErr error      // guarded by p.n.mu
	// early says a 18x answer started the streams of a call the peer
	// placed; earlySamples is how much audio had arrived at the 2xx.
	early        bool // guarded by p.n.mu
	earlySamples int  // guarded by p.n.mu
}

func (c *PeerCall) mu() *sync.Mutex { return &c.p.n.mu }

// CallID returns the call's Call-ID.
func (c *PeerCall) CallID() string { return c.callID }

// Invite returns the INVITE as received (the authenticated one when the
// peer challenged).
func (c *PeerCall) Invite() Request { return c.invite }

// Header returns the INVITE's first header field called name, or "".
func (c *PeerCall) Header(name string) string { return c.invite.Header(name) }

// FromDisplayName returns the display name of the INVITE's From header.
func (c *PeerCall) FromDisplayName() string {
	if c.inv == nil || c.inv.From() == nil {
		return ""
	}
	return c.inv.From().DisplayName
}

// FromURI returns the URI of the INVITE's From header.
func (c *PeerCall) FromURI() string {
	if c.inv == nil || c.inv.From() == nil {
		return ""
	}
	return c.inv.From().Address.String()
}

// OfferSDP returns the INVITE's SDP body: the caller's offer, or for a
// call the peer placed, the peer's own offer (nil with
// CallOptions.DelayedOffer).
func (c *PeerCall) OfferSDP() []byte { return c.invite.Body }

// RemoteSDP returns the other side's SDP of the initial offer/answer: the
// INVITE's offer of an incoming call (the ACK's answer for a delayed
// offer), the 200 OK's answer (or offer) of a call the peer placed. Nil
// before it arrived.
func (c *PeerCall) RemoteSDP() []byte {
	c.mu().Lock()
	defer c.mu().Unlock()
	if c.remote != nil || c.outgoing {
		return c.remote
	}
	return c.invite.Body
}

// Outgoing reports whether the peer placed the call (Peer.Call).
func (c *PeerCall) Outgoing() bool { return c.outgoing }

// LateOfferError returns why the answer in the ACK to a delayed-offer
// INVITE was refused (the peer then hung up), nil otherwise.
func (c *PeerCall) LateOfferError() error {
	c.mu().Lock()
	defer c.mu().Unlock()
	return c.lateErr
}

// AnswerSDP returns the SDP the peer answered with (nil before the answer
// or when it rejected the call). After a re-INVITE it is the latest one.
func (c *PeerCall) AnswerSDP() []byte {
	c.mu().Lock()
	defer c.mu().Unlock()
	return c.answer
}

// Streams returns the negotiated streams seen from the peer's side.
func (c *PeerCall) Streams() []media.StreamSpec {
	c.mu().Lock()
	defer c.mu().Unlock()
	return append([]media.StreamSpec(nil), c.specs...)
}

// Done is closed when the call ends.
func (c *PeerCall) Done() <-chan struct{} { return c.done }

// End returns how the call ended (EndNone while it goes on).
func (c *PeerCall) End() EndReason {
	c.mu().Lock()
	defer c.mu().Unlock()
	return c.end
}

// WaitEnd waits for the call to end and returns how.
func (c *PeerCall) WaitEnd(ctx context.Context) (EndReason, error) {
	var r EndReason
	err := c.p.n.wait(ctx, c.p.closing, func() bool { r = c.end; return r != EndNone })
	return r, err
}

// WaitEstablished waits until the caller acknowledged the 200 OK.
func (c *PeerCall) WaitEstablished(ctx context.Context) error {
	var end EndReason
	err := c.p.n.wait(ctx, c.p.closing, func() bool { end = c.end; return c.acked || end != EndNone })
	if err == nil && end != EndNone && !c.isAcked() {
		return fmt.Errorf("%w (%s) before it was established", ErrCallEnded, end)
	}
	return err
}

func (c *PeerCall) isAcked() bool {
	c.mu().Lock()
	defer c.mu().Unlock()
	return c.acked
}

// WaitBye waits for the caller's BYE and returns nil when it arrived and
// was answered, so End reports EndRemoteBye (on a vanished call, which does
// not answer it, as soon as it arrived). It returns an error wrapping
// ErrCallEnded when the call ended otherwise.
func (c *PeerCall) WaitBye(ctx context.Context) error {
	var got bool
	var end EndReason
	err := c.p.n.wait(ctx, c.p.closing, func() bool {
		got, end = c.byeReceived, c.end
		if got {
			return end != EndNone || c.vanished
		}
		return end != EndNone
	})
	if err != nil {
		return err
	}
	if !got {
		return fmt.Errorf("%w (%s) without a BYE from the caller", ErrCallEnded, end)
	}
	return nil
}

// Bye returns the caller's BYE and whether it was received.
func (c *PeerCall) Bye() (Request, bool) {
	c.mu().Lock()
	defer c.mu().Unlock()
	return c.bye, c.byeReceived
}

// DTMF returns the digits received so far, from RFC 4733 events and from
// INFO (application/dtmf-relay and application/dtmf), in arrival order.
func (c *PeerCall) DTMF() string {
	c.mu().Lock()
	defer c.mu().Unlock()
	return string(c.dtmf)
}

// WaitDTMF waits until at least n digits were received and returns them all.
func (c *PeerCall) WaitDTMF(ctx context.Context, n int) (string, error) {
	var s string
	err := c.p.n.wait(ctx, c.p.closing, func() bool { s = string(c.dtmf); return len(c.dtmf) >= n })
	return s, err
}

// Infos returns the INFO requests received, in order.
func (c *PeerCall) Infos() []Request {
	c.mu().Lock()
	defer c.mu().Unlock()
	return append([]Request(nil), c.infos...)
}

// WaitInfos waits until at least n INFO requests were received and returns
// them all.
func (c *PeerCall) WaitInfos(ctx context.Context, n int) ([]Request, error) {
	var out []Request
	err := c.p.n.wait(ctx, c.p.closing, func() bool {
		out = append(out[:0], c.infos...)
		return len(c.infos) >= n
	})
	return out, err
}

// Reinvites returns the in-dialog INVITE and UPDATE requests received.
func (c *PeerCall) Reinvites() []Request {
	c.mu().Lock()
	defer c.mu().Unlock()
	return append([]Request(nil), c.reinvites...)
}

// WaitReinvites waits until at least n re-INVITEs/UPDATEs were answered.
func (c *PeerCall) WaitReinvites(ctx context.Context, n int) ([]Request, error) {
	var out []Request
	err := c.p.n.wait(ctx, c.p.closing, func() bool {
		out = append(out[:0], c.reinvites...)
		return len(c.reinvites) >= n
	})
	return out, err
}

// RTCP returns the counts of RTCP packets received.
func (c *PeerCall) RTCP() RTCPStats {
	c.mu().Lock()
	defer c.mu().Unlock()
	return c.rtcp
}

// KeyframeRequests returns the number of keyframe requests received: RTCP
// PLI and FIR, and INFO picture_fast_update.
func (c *PeerCall) KeyframeRequests() int {
	c.mu().Lock()
	defer c.mu().Unlock()
	return c.rtcp.PLI + c.rtcp.FIR + c.infoKeyframes
}

// WaitKeyframeRequests waits until at least n keyframe requests arrived.
func (c *PeerCall) WaitKeyframeRequests(ctx context.Context, n int) error {
	return c.p.n.wait(ctx, c.p.closing, func() bool {
		return c.rtcp.PLI+c.rtcp.FIR+c.infoKeyframes >= n
	})
}

// WaitRTCP waits until the received RTCP counts satisfy cond.
func (c *PeerCall) WaitRTCP(ctx context.Context, cond func(RTCPStats) bool) error {
	return c.p.n.wait(ctx, c.p.closing, func() bool { return cond(c.rtcp) })
}

// VideoSent returns what the peer's video sender did: frames, keyframes
// (sent on request among them), packets and retransmissions.
func (c *PeerCall) VideoSent() VideoSendStats {
	c.mu().Lock()
	defer c.mu().Unlock()
	return c.video
}

// WaitVideoSent waits until the video sender's counts satisfy cond (called
// with the peer's lock held: it must not call the PeerCall).
func (c *PeerCall) WaitVideoSent(ctx context.Context, cond func(VideoSendStats) bool) error {
	return c.p.n.wait(ctx, c.p.closing, func() bool { return cond(c.video) })
}

// RTPPackets returns the number of RTP packets received on the stream of
// that kind (telephone-event packets included).
func (c *PeerCall) RTPPackets(k media.Kind) int {
	c.mu().Lock()
	defer c.mu().Unlock()
	if int(k) >= len(c.rtp) {
		return 0
	}
	return c.rtp[k]
}

// WaitRTP waits until at least n RTP packets of that kind were received.
func (c *PeerCall) WaitRTP(ctx context.Context, k media.Kind, n int) error {
	if int(k) >= len(c.rtp) {
		return fmt.Errorf("siptest: kind %v", k)
	}
	return c.p.n.wait(ctx, c.p.closing, func() bool { return c.rtp[k] >= n })
}

// ReceivedAudio returns the PCMA/PCMU audio received, decoded to 16-bit
// samples at 8 kHz (at most the first 60 s), for tone checks. For a call
// the peer placed it starts with the early media, if any (EarlyAudio).
func (c *PeerCall) ReceivedAudio() []int16 {
	c.mu().Lock()
	defer c.mu().Unlock()
	return append([]int16(nil), c.audio...)
}

// EarlyAudio returns, for a call the peer placed, the audio received
// before the 2xx answer: the early media of a 183 with SDP (a ringback
// tone, a prompt), decoded as ReceivedAudio. Nil without early media.
func (c *PeerCall) EarlyAudio() []int16 {
	c.mu().Lock()
	defer c.mu().Unlock()
	n := len(c.audio)
	if c.dlg != nil {
		n = c.earlySamples
	}
	if !c.early || n == 0 {
		return nil
	}
	return append([]int16(nil), c.audio[:n]...)
}

// Vanish makes the peer go silent on this call: no more RTP, no BYE, no
// response to any in-dialog request (the caller's BYE is still recorded).
// It returns once the last packet was sent.
func (c *PeerCall) Vanish() {
	c.mu().Lock()
	c.vanished = true
	c.p.n.broadcast()
	c.mu().Unlock()
	c.stopMedia()
	c.senders.Wait()
}

func (c *PeerCall) isVanished() bool {
	c.mu().Lock()
	defer c.mu().Unlock()
	return c.vanished
}

func (c *PeerCall) stopMedia() {
	c.stopOnce.Do(func() { close(c.mediaStop) })
}

// finish ends the call (once) and releases its media.
func (c *PeerCall) finish(r EndReason) {
	c.mu().Lock()
	if c.end != EndNone {
		c.mu().Unlock()
		return
	}
	c.end = r
	close(c.done)
	streams := c.streams
	tx := c.inviteTx
	c.inviteTx = nil
	var pending []*rtpStream
	if c.late != nil {
		pending = []*rtpStream{c.late.audio, c.late.video}
		c.late = nil
	}
	c.p.n.broadcast()
	c.mu().Unlock()
	c.stopMedia()
	for _, s := range append(streams, pending...) {
		s.close()
	}
	if tx != nil {
		tx.Terminate()
	}
}

// recordInfo records an INFO: its DTMF digit or keyframe request, if any.
func (c *PeerCall) recordInfo(r Request) {
	digit, keyframe := parseInfo(r.ContentType(), r.Body)
	c.mu().Lock()
	c.infos = append(c.infos, r)
	if digit != 0 {
		c.dtmf = append(c.dtmf, digit)
	}
	if keyframe {
		c.infoKeyframes++
	}
	c.p.n.broadcast()
	streams := c.streams
	c.mu().Unlock()
	if keyframe {
		for _, s := range streams {
			s.requestKeyframe()
		}
	}
}

// parseInfo reads an INFO body: a DTMF digit (application/dtmf-relay
// "Signal=5", application/dtmf "5") or a keyframe request
// (application/media_control+xml with picture_fast_update, RFC 5168).
func parseInfo(contentType string, body []byte) (digit rune, keyframe bool) {
	ct, _, _ := strings.Cut(contentType, ";")
	switch strings.ToLower(strings.TrimSpace(ct)) {
	case "application/dtmf-relay":
		for _, line := range strings.Split(string(body), "\n") {
			k, v, ok := strings.Cut(line, "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "Signal") {
				digit = dtmfRune(strings.TrimSpace(v))
			}
		}
	case "application/dtmf":
		digit = dtmfRune(strings.TrimSpace(string(body)))
	case "application/media_control+xml":
		keyframe = strings.Contains(string(body), "picture_fast_update")
	}
	return digit, keyframe
}

// dtmfRune maps an INFO signal ("5", "*", "#", "A", or the event number
// "10"/"11" some phones send) to a digit, 0 if none.
func dtmfRune(s string) rune {
	switch s {
	case "10":
		return '*'
	case "11":
		return '#'
	}
	if len(s) != 1 {
		return 0
	}
	r := rune(s[0])
	switch {
	case r >= '0' && r <= '9', r == '*', r == '#':
		return r
	case r >= 'A' && r <= 'D':
		return r
	case r >= 'a' && r <= 'd':
		return r - 'a' + 'A'
	}
	return 0
}
