package callmgr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sip"
	"github.com/sipstream/sipstream/sip/sdp"
)

// peerSDPConfig is the fake peer's side of a real SDP exchange.
func peerSDPConfig(dir media.Direction) sdp.OfferConfig {
	return sdp.OfferConfig{
		Addr:  netip.MustParseAddr("127.0.0.1"),
		Audio: &sdp.MediaConfig{Port: 52000, Direction: dir, Codecs: []media.Codec{media.CodecPCMA}},
		Video: &sdp.MediaConfig{Port: 52002, Direction: dir, Codecs: []media.Codec{media.CodecH264}, Feedback: true},
	}
}

// realBackend uses the real SDP, fan-out and recorder with the fake SIP,
// media session and RTMP sink.
func (w *fakeWorld) realBackend() *backend {
	w.realSDP = true
	return &backend{sig: (*fakeSig)(w), media: (*fakeMedia)(w), sdp: sdpAdapter{},
		sinks: sinkAdapter{newRTMP: (*fakeSinks)(w).NewRTMP}}
}

// The fakes below stand in for sip, sip/sdp, media/session and the sinks.
// Their behaviour is chosen by the callee's user part:
//
//	answer      answers at once (after a 180)
//	early       183 with SDP, then answers
//	ringmedia   180 with SDP, never answers
//	ring        180, never answers (until cancelled)
//	busy        486 Busy Here
//	reject      503 Service Unavailable
//	badsdp      answers with an SDP that does not negotiate
//	hangup      answers; the peer hangs up as soon as the test says so

type fakeWorld struct {
	mu           sync.Mutex
	invites      []*inviteRequest
	dialogs      map[string]*fakeDialog // by call ID
	registers    []account
	regOpen      atomic.Int32
	regFail      bool
	cancels      atomic.Int32
	sessions     map[*fakeSession]bool
	sessOpen     atomic.Int32
	nextPort     int
	sinksOpen    atomic.Int32
	rtmp         map[string]*fakeRTMP // by stream name
	recorders    map[string]*fakeSink // by path
	answered     chan string          // call IDs as they are answered
	invited      chan string          // call IDs as INVITEs arrive
	mediaNewFail bool
	// realSDP makes the fake peer answer with sip/sdp (the offer is then
	// real SDP too: see realBackend).
	realSDP bool
	// peerAudioPort is the fake peer's audio port in real SDP answers.
	peerAudioPort int
	// peerSRTP is what the realSDP peer does with SRTP: "" refuses an
	// RTP/SAVP offer (488), "sdes" answers it with a=crypto, "plain"
	// answers it with RTP/AVP and no a=crypto (as some PBXs do), "415"
	// refuses it with 415.
	peerSRTP string
	// Incoming side: what Serve was given, our registrar's bindings, the
	// account registrations (regExpires granted; regFails refusals to come).
	serve      serveConfig
	bindings   []sip.Binding
	regExpires time.Duration
	regFails   int
	regs       []*fakeReg
}

func newFakeWorld() *fakeWorld {
	return &fakeWorld{
		dialogs:   make(map[string]*fakeDialog),
		sessions:  make(map[*fakeSession]bool),
		nextPort:  40000,
		rtmp:      make(map[string]*fakeRTMP),
		recorders: make(map[string]*fakeSink),
		answered:  make(chan string, 1000),
		invited:   make(chan string, 1000),
	}
}

func (w *fakeWorld) backend() *backend {
	return &backend{sig: (*fakeSig)(w), media: (*fakeMedia)(w), sdp: fakeSDP{}, sinks: (*fakeSinks)(w)}
}

func (w *fakeWorld) dialog(callID string) *fakeDialog {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dialogs[callID]
}

func (w *fakeWorld) rtmpSink(stream string) *fakeRTMP {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rtmp[stream]
}

func (w *fakeWorld) session(callID string) *fakeSession {
	w.mu.Lock()
	defer w.mu.Unlock()
	for s := range w.sessions {
		if s.callID == callID {
			return s
		}
	}
	return nil
}

// --- signaling ---

type fakeSig fakeWorld

type fakeReg struct {
	w      *fakeWorld
	acct   account
	closed atomic.Bool
}

func (r *fakeReg) Expires() time.Duration {
	r.w.mu.Lock()
	defer r.w.mu.Unlock()
	if r.w.regExpires == 0 {
		return time.Hour
	}
	return r.w.regExpires
}

func (r *fakeReg) Close(context.Context) error {
	if r.closed.CompareAndSwap(false, true) {
		r.w.regOpen.Add(-1)
	}
	return nil
}

func (s *fakeSig) Register(ctx context.Context, a account) (registration, error) {
	w := (*fakeWorld)(s)
	w.mu.Lock()
	w.registers = append(w.registers, a)
	fail := w.regFail || w.regFails > 0
	if w.regFails > 0 {
		w.regFails--
	}
	w.mu.Unlock()
	if fail {
		return nil, &SIPError{Code: 403, Reason: "Forbidden"}
	}
	w.regOpen.Add(1)
	r := &fakeReg{w: w, acct: a}
	w.mu.Lock()
	w.regs = append(w.regs, r)
	w.mu.Unlock()
	return r, nil
}

func (s *fakeSig) Serve(cfg serveConfig) error {
	w := (*fakeWorld)(s)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.serve = cfg
	return nil
}

func (s *fakeSig) Bindings() []sip.Binding {
	w := (*fakeWorld)(s)
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]sip.Binding(nil), w.bindings...)
}

// fakeInvite is an incoming INVITE. Its answers are recorded as "180",
// "183 <sdp>", "200 <sdp>", "486 Busy Here", "302 <target>", "401".
type fakeInvite struct {
	w     *fakeWorld
	info  inviteInfo
	offer []byte
	// auth is what Authenticate does: "" no credentials (401), "bad"
	// wrong ones (403), else the user that authenticates.
	auth string
	// noACK makes Answer fail as the sip package does without an ACK.
	noACK bool

	done     chan struct{}
	doneOnce sync.Once
	mu       sync.Mutex
	answers  []string
	final    bool
	cancel   bool
	dlg      *fakeDialog
	changed  chan struct{}
}

func (w *fakeWorld) newInvite(callID, from, ruser string, src string, offer []byte) *fakeInvite {
	return &fakeInvite{w: w, offer: offer, done: make(chan struct{}), changed: make(chan struct{}, 100),
		info: inviteInfo{
			CallID:      callID,
			From:        sip.Address{DisplayName: "Alice", URI: "sip:" + from + "@example.com", User: from, Host: "example.com"},
			To:          sip.Address{URI: "sip:" + ruser + "@gw.example", User: ruser, Host: "gw.example"},
			RequestURI:  "sip:" + ruser + "@127.0.0.1",
			RequestUser: ruser,
			Headers:     []sip.Header{{Name: "X-Room", Value: "7"}},
			Source:      netip.MustParseAddrPort(src),
			Transport:   "udp",
		}}
}

// send offers inv to the Manager as the user agent does (a goroutine per
// INVITE); nothing when no handler was set (the UA would answer 480).
func (w *fakeWorld) send(inv *fakeInvite) bool {
	w.mu.Lock()
	h := w.serve.OnInvite
	w.mu.Unlock()
	if h == nil {
		return false
	}
	go h(inv)
	return true
}

func (f *fakeInvite) Info() inviteInfo      { return f.info }
func (f *fakeInvite) Offer() []byte         { return f.offer }
func (f *fakeInvite) Done() <-chan struct{} { return f.done }
func (f *fakeInvite) Cancelled() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cancel
}

func (f *fakeInvite) record(a string, final bool) error {
	f.mu.Lock()
	if f.final {
		f.mu.Unlock()
		return sip.ErrAnswered
	}
	f.answers = append(f.answers, a)
	f.final = final
	f.mu.Unlock()
	if final {
		f.doneOnce.Do(func() { close(f.done) })
	}
	f.changed <- struct{}{}
	return nil
}

// cancelled is the caller's CANCEL (the UA answers 487 itself).
func (f *fakeInvite) cancelNow() {
	f.mu.Lock()
	if !f.final {
		f.cancel = true
		f.final = true
		f.answers = append(f.answers, "487")
	}
	f.mu.Unlock()
	f.doneOnce.Do(func() { close(f.done) })
}

func (f *fakeInvite) Progress(code int, reason string, sdp []byte) error {
	a := fmt.Sprint(code)
	if sdp != nil {
		a += " " + string(sdp)
	}
	return f.record(a, false)
}

func (f *fakeInvite) Reject(code int, reason string) error {
	return f.record(fmt.Sprintf("%d %s", code, reason), true)
}

func (f *fakeInvite) Redirect(target string) error { return f.record("302 "+target, true) }

func (f *fakeInvite) Authenticate() (string, error) {
	switch f.auth {
	case "":
		_ = f.record("401", true)
		return "", sip.ErrUnauthorized
	case "bad":
		_ = f.record("403", true)
		return "", sip.ErrForbidden
	}
	return f.auth, nil
}

func (f *fakeInvite) Answer(ctx context.Context, sdp []byte, opts answerOptions) (dialog, error) {
	if err := f.record("200 "+string(sdp), true); err != nil {
		return nil, err
	}
	if f.noACK {
		return nil, &SIPError{Code: 408, Reason: "Request Timeout"}
	}
	answer := f.offer
	if answer == nil {
		answer = []byte("ok") // the ACK's answer to our offer
	}
	d := &fakeDialog{w: f.w, callID: f.info.CallID, answer: answer, done: make(chan struct{}),
		req: &inviteRequest{OnReinvite: opts.OnReinvite, OnDTMF: opts.OnDTMF}}
	f.mu.Lock()
	f.dlg = d
	f.mu.Unlock()
	f.w.mu.Lock()
	f.w.dialogs[f.info.CallID] = d
	f.w.mu.Unlock()
	return d, nil
}

func (f *fakeInvite) responses() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.answers...)
}

// waitFinal waits for the final answer and returns every answer.
func (f *fakeInvite) waitFinal(t interface{ Fatalf(string, ...any) }) []string {
	select {
	case <-f.done:
	case <-time.After(20 * time.Second):
		f.mu.Lock()
		defer f.mu.Unlock()
		t.Fatalf("INVITE %s never answered; answers %v", f.info.CallID, f.answers)
	}
	return f.responses()
}

func userOf(callee string) string {
	u := strings.TrimPrefix(callee, "sip:")
	u, _, _ = strings.Cut(u, "@")
	return u
}

func (s *fakeSig) Invite(ctx context.Context, req *inviteRequest) (dialog, error) {
	w := (*fakeWorld)(s)
	w.mu.Lock()
	w.invites = append(w.invites, req)
	w.mu.Unlock()
	w.invited <- req.CallID
	cancelled := func() (dialog, error) {
		w.cancels.Add(1)
		return nil, ctx.Err()
	}
	switch userOf(req.Callee) {
	case "busy":
		req.OnProgress(100, "Trying", nil)
		return nil, &SIPError{Code: 486, Reason: "Busy Here"}
	case "reject":
		return nil, &SIPError{Code: 503, Reason: "Service Unavailable"}
	case "ring", "ringmedia":
		var sdp []byte
		if userOf(req.Callee) == "ringmedia" {
			sdp = []byte("early")
		}
		req.OnProgress(180, "Ringing", sdp)
		<-ctx.Done()
		return cancelled()
	case "early":
		req.OnProgress(183, "Session Progress", []byte("early"))
	case "progress":
		req.OnProgress(183, "Session Progress", nil)
	default:
		req.OnProgress(180, "Ringing", nil)
	}
	if ctx.Err() != nil {
		return cancelled()
	}
	answer := []byte("ok")
	if userOf(req.Callee) == "badsdp" {
		answer = []byte("bad")
	} else if w.realSDP {
		pc := peerSDPConfig(media.SendRecv)
		if w.peerAudioPort != 0 {
			pc.Audio.Port = w.peerAudioPort
		}
		w.mu.Lock()
		mode := w.peerSRTP
		w.mu.Unlock()
		offer := req.Offer
		savp := bytes.Contains(offer, []byte("RTP/SAVP"))
		switch {
		case mode == "sdes":
			pc.Audio.Crypto, pc.Video.Crypto = &media.Crypto{}, &media.Crypto{}
		case mode == "plain" && savp:
			offer = bytes.ReplaceAll(offer, []byte("RTP/SAVP"), []byte("RTP/AVP"))
			offer = regexp.MustCompile(`a=crypto:[^\r\n]*\r?\n`).ReplaceAll(offer, nil)
		case mode == "415" && savp:
			return nil, &SIPError{Code: 415, Reason: "Unsupported Media Type"}
		}
		a, _, err := sdp.Answer(offer, pc)
		if err != nil {
			return nil, &SIPError{Code: 488, Reason: "Not Acceptable Here", Err: err}
		}
		answer = a
	}
	d := &fakeDialog{w: w, callID: req.CallID, req: req, answer: answer, done: make(chan struct{})}
	w.mu.Lock()
	w.dialogs[req.CallID] = d
	w.mu.Unlock()
	w.answered <- req.CallID
	return d, nil
}

type fakeDialog struct {
	w      *fakeWorld
	callID string
	req    *inviteRequest
	answer []byte
	done   chan struct{}
	once   sync.Once
	err    error

	mu        sync.Mutex
	byes      int
	digits    []string
	keyframes int
	reinvites [][]byte // offers of our re-INVITEs
	reinvErr  error    // the next re-INVITE fails with this
	refers    []string // targets ("target|replacesCallID")
	referErr  error
	onRefer   func(code int, reason string) // the last REFER's progress callback
	noRefer   bool                          // the peer's Allow lacks REFER
}

func (d *fakeDialog) Reinvite(ctx context.Context, offer []byte) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.reinvErr; err != nil {
		d.reinvErr = nil
		return nil, err
	}
	d.reinvites = append(d.reinvites, append([]byte(nil), offer...))
	return []byte("ok"), nil
}

func (d *fakeDialog) Refer(ctx context.Context, target string, replaces dialog, onProgress func(int, string)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.referErr != nil {
		return d.referErr
	}
	r := ""
	if fd, ok := replaces.(*fakeDialog); ok {
		r = fd.callID
	}
	d.refers = append(d.refers, target+"|"+r)
	d.onRefer = onProgress
	return nil
}

// notify sends the last REFER's progress as the peer's NOTIFY would.
func (d *fakeDialog) notify(code int, reason string) {
	d.mu.Lock()
	f := d.onRefer
	d.mu.Unlock()
	f(code, reason)
}

func (d *fakeDialog) PeerAllows(method string) bool { return !d.noRefer || method != "REFER" }

func (d *fakeDialog) reinviteOffers() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, o := range d.reinvites {
		out = append(out, string(o))
	}
	return out
}

func (d *fakeDialog) AnswerSDP() []byte     { return d.answer }
func (d *fakeDialog) Done() <-chan struct{} { return d.done }
func (d *fakeDialog) Err() error {
	select {
	case <-d.done:
		return d.err
	default:
		return nil
	}
}

func (d *fakeDialog) end(err error) {
	d.once.Do(func() {
		d.err = err
		close(d.done)
	})
}

// peerBye simulates a BYE from the peer.
func (d *fakeDialog) peerBye() { d.end(ErrRemoteHangup) }

func (d *fakeDialog) Bye(ctx context.Context) error {
	d.mu.Lock()
	d.byes++
	d.mu.Unlock()
	d.end(nil)
	return nil
}

func (d *fakeDialog) byeCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.byes
}

func (d *fakeDialog) SendDTMF(ctx context.Context, digit rune, relay bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.digits = append(d.digits, fmt.Sprintf("%c/%t", digit, relay))
	return nil
}

func (d *fakeDialog) RequestKeyframe(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keyframes++
	return nil
}

// --- media ---

type fakeMedia fakeWorld

type fakeSession struct {
	w        *fakeWorld
	cfg      mediaConfig
	callID   string
	audio    int
	video    int
	mu       sync.Mutex
	specs    [][]media.StreamSpec
	dtmf     []string
	kf       int
	closed   bool
	audioSrc sound.Source
	audioSet int
}

func (s *fakeSession) SetAudioSource(src sound.Source) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audioSrc = src
	s.audioSet++
	return nil
}

func (s *fakeSession) audioSource() sound.Source {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.audioSrc
}

func (m *fakeMedia) New(cfg mediaConfig) (mediaSession, error) {
	w := (*fakeWorld)(m)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mediaNewFail {
		return nil, errors.New("no free ports")
	}
	s := &fakeSession{w: w, cfg: cfg, callID: cfg.CallID, audio: w.nextPort, video: w.nextPort + 2}
	w.nextPort += 4
	w.sessions[s] = true
	w.sessOpen.Add(1)
	return s, nil
}

func (s *fakeSession) LocalPort(k media.Kind) int {
	if k == media.KindVideo {
		return s.video
	}
	return s.audio
}

func (s *fakeSession) Start(specs []media.StreamSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.specs = append(s.specs, specs)
	return nil
}

func (s *fakeSession) Update(specs []media.StreamSpec) error { return s.Start(specs) }

func (s *fakeSession) RequestKeyframe() {
	s.mu.Lock()
	s.kf++
	s.mu.Unlock()
}

func (s *fakeSession) SendDTMF(ctx context.Context, digits string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("session closed")
	}
	s.dtmf = append(s.dtmf, digits)
	return nil
}

func (s *fakeSession) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.w.sessOpen.Add(-1)
		s.w.mu.Lock()
		delete(s.w.sessions, s)
		s.w.mu.Unlock()
	}
	return nil
}

func (s *fakeSession) stats() (MediaStats, MediaStats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return MediaStats{KeyframeRequests: uint64(s.kf)}, MediaStats{}
}

// frame feeds a frame as the session would.
func (s *fakeSession) frame(f media.Frame) { s.cfg.OnFrame(&f) }

// --- SDP ---

type fakeSDP struct{}

type fakeOffer struct{ cfg offerConfig }

func (o fakeOffer) Marshal() []byte {
	return []byte(fmt.Sprintf("audio %d %s; video %d %s", o.cfg.AudioPort, o.cfg.AudioDir, o.cfg.VideoPort, o.cfg.VideoDir))
}

func specsFor(cfg offerConfig, peer media.Direction) []media.StreamSpec {
	dir := func(ours media.Direction) media.Direction {
		send := ours.Sends() && peer.Receives()
		recv := ours.Receives() && peer.Sends()
		switch {
		case send && recv:
			return media.SendRecv
		case send:
			return media.SendOnly
		case recv:
			return media.RecvOnly
		}
		return media.Inactive
	}
	remote := netip.MustParseAddrPort("127.0.0.1:50000")
	return []media.StreamSpec{
		{Kind: media.KindAudio, Direction: dir(cfg.AudioDir), Remote: remote,
			Formats: []media.PayloadFormat{{PayloadType: 8, Codec: media.CodecPCMA, ClockRate: 8000}}},
		{Kind: media.KindVideo, Direction: dir(cfg.VideoDir), Remote: remote,
			Formats: []media.PayloadFormat{{PayloadType: 96, Codec: media.CodecH264, ClockRate: 90000}}},
	}
}

func (o fakeOffer) Negotiate(answer []byte) ([]media.StreamSpec, error) {
	if string(answer) != "ok" && string(answer) != "early" {
		return nil, errors.New("no common codec")
	}
	return specsFor(o.cfg, media.SendRecv), nil
}

func (fakeSDP) NewOffer(cfg offerConfig) (sdpOffer, error) { return fakeOffer{cfg}, nil }

// Answer understands offers "sendrecv", "sendonly" (hold), "inactive".
func (fakeSDP) Answer(offer []byte, cfg offerConfig) ([]byte, []media.StreamSpec, error) {
	var peer media.Direction
	switch string(offer) {
	case "sendrecv":
		peer = media.SendRecv
	case "sendonly":
		peer = media.SendOnly
	case "inactive":
		peer = media.Inactive
	default:
		return nil, nil, errors.New("bad offer")
	}
	return []byte("answer"), specsFor(cfg, peer), nil
}

// --- sinks ---

type fakeSinks fakeWorld

// fakeFanout feeds sinks synchronously (enough for the call logic).
type fakeFanout struct {
	mu       sync.Mutex
	sinks    map[string]sink.Sink
	onDetach func(string, error)
	closed   bool
}

func (f *fakeFanout) Add(name string, s sink.Sink, queue int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errors.New("fanout closed")
	}
	f.sinks[name] = s
	return nil
}

func (f *fakeFanout) Remove(_ context.Context, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sinks, name)
}

func (f *fakeFanout) WriteFrame(fr *media.Frame) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cp := *fr
	cp.Payload = append([]byte(nil), fr.Payload...)
	for name, s := range f.sinks {
		if err := s.WriteFrame(&cp); err != nil {
			delete(f.sinks, name)
			f.onDetach(name, err)
		}
	}
}

func (f *fakeFanout) Close(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, s := range f.sinks {
		_ = s.Close(ctx)
	}
	f.sinks = nil
}

func (f *fakeFanout) stats() []SinkStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []SinkStats
	for name := range f.sinks {
		out = append(out, SinkStats{ID: name})
	}
	return out
}

func (w *fakeSinks) NewFanout(onDetach func(string, error), _ func()) fanout {
	return &fakeFanout{sinks: make(map[string]sink.Sink), onDetach: onDetach}
}

// fakeSink records frames.
type fakeSink struct {
	w       *fakeWorld
	mu      sync.Mutex
	frames  []media.Frame
	closed  bool
	failErr error
}

func newFakeSink(w *fakeWorld) *fakeSink {
	w.sinksOpen.Add(1)
	return &fakeSink{w: w}
}

func (s *fakeSink) WriteFrame(f *media.Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failErr != nil {
		return s.failErr
	}
	s.frames = append(s.frames, *f)
	return nil
}

func (s *fakeSink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.w.sinksOpen.Add(-1)
	}
	return nil
}

func (s *fakeSink) snapshot() ([]media.Frame, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]media.Frame(nil), s.frames...), s.closed
}

type fakeRTMP struct {
	*fakeSink
	cfg rtmpConfig
}

func (w *fakeSinks) NewRTMP(cfg rtmpConfig) (sink.Sink, error) {
	world := (*fakeWorld)(w)
	s := &fakeRTMP{fakeSink: newFakeSink(world), cfg: cfg}
	world.mu.Lock()
	world.rtmp[cfg.Stream] = s
	world.mu.Unlock()
	if strings.Contains(cfg.URL, "fail.invalid") {
		go cfg.OnStatus(SinkFailed, "connection refused")
	} else {
		cfg.RequestKeyframe()
		go cfg.OnStatus(SinkActive, "")
	}
	return s, nil
}

func (w *fakeSinks) NewRecorder(path, format string, audio, video bool, maxBytes int64) (sink.Sink, error) {
	world := (*fakeWorld)(w)
	s := newFakeSink(world)
	world.mu.Lock()
	world.recorders[path] = s
	world.mu.Unlock()
	return s, nil
}

// waitFor polls cond (fakes have no better signal for some things).
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}
