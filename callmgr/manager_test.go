package callmgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sip"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// eventLog records events per call, in delivery order.
type eventLog struct {
	mu     sync.Mutex
	byCall map[string][]Event
	goids  map[string]map[string]bool
	notify chan struct{}
}

func newEventLog() *eventLog {
	return &eventLog{byCall: make(map[string][]Event), notify: make(chan struct{}, 1)}
}

func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	l.byCall[ev.CallID] = append(l.byCall[ev.CallID], ev)
	l.mu.Unlock()
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

func (l *eventLog) events(callID string) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.byCall[callID]...)
}

// statuses is the sequence of call statuses reported (changes only).
func (l *eventLog) statuses(callID string) []Status {
	var out []Status
	for _, ev := range l.events(callID) {
		if ev.Type == EventCallStatus && (len(out) == 0 || out[len(out)-1] != ev.Status) {
			out = append(out, ev.Status)
		}
	}
	return out
}

func (l *eventLog) sinkStatuses(callID, sinkID string) []SinkStatus {
	var out []SinkStatus
	for _, ev := range l.events(callID) {
		if ev.Type == EventSinkStatus && ev.Sink.ID == sinkID && !ev.Removed &&
			(len(out) == 0 || out[len(out)-1] != ev.Sink.Status) {
			out = append(out, ev.Sink.Status)
		}
	}
	return out
}

// waitStatus waits until callID reported st.
func (l *eventLog) waitStatus(t *testing.T, callID string, st Status) {
	t.Helper()
	ok := waitFor(func() bool {
		for _, s := range l.statuses(callID) {
			if s == st {
				return true
			}
		}
		return false
	})
	require.True(t, ok, "call %s never reached %s; saw %v", callID, st, l.statuses(callID))
}

type testEnv struct {
	tt  *testing.T
	m   *Manager
	w   *fakeWorld
	log *eventLog
	buf *testenv.SyncBuffer
}

func newTestEnv(t *testing.T, mod func(*Config)) *testEnv {
	t.Helper()
	w := newFakeWorld()
	log := newEventLog()
	buf := &testenv.SyncBuffer{}
	cfg := Config{
		ListenAddr:      "127.0.0.1:0",
		RecordDir:       t.TempDir(),
		OnEvent:         log.add,
		Logger:          slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		TeardownTimeout: 10 * time.Second,
		backend:         w.backend(),
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, m.Close(ctx))
		assert.Zero(t, w.sessOpen.Load(), "media sessions left open")
		assert.Zero(t, w.sinksOpen.Load(), "sinks left open")
		assert.Zero(t, w.regOpen.Load(), "registrations left open")
	})
	return &testEnv{m: m, w: w, log: log, buf: buf}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitDone(t *testing.T, c *Call) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("call %s did not end", c.ID())
	}
}

func TestEstablishStreamAndTerminate(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{
		CallID: "c1", Callee: "sip:answer@pbx.example", RTMPURL: "rtmp://127.0.0.1/live", RTMPStream: "key1",
		HasAudio: true, HasVideo: false, SIPLogin: "1001", SIPPassword: "s3cret!", Record: true,
		Headers: []sip.Header{{Name: "X-Room", Value: "42"}},
	})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))

	info := c.Info()
	assert.Equal(t, StatusEstablished, info.Status)
	assert.Equal(t, 200, info.SIPStatus)
	assert.Equal(t, "c1", info.ToStream, "toStream defaults to callId")
	assert.True(t, info.ToStreamDefaulted)
	assert.NotEmpty(t, info.RecordPath)
	assert.False(t, info.Established.IsZero())

	// The offer: audio sendrecv (hasAudio), video recvonly (!hasVideo).
	e.w.mu.Lock()
	inv := e.w.invites[0]
	e.w.mu.Unlock()
	assert.Contains(t, string(inv.Offer), "sendrecv; video")
	assert.Contains(t, string(inv.Offer), "recvonly")
	assert.Equal(t, "c1", inv.CallID)
	assert.Equal(t, "1001", inv.User)
	assert.Equal(t, "1001", inv.AuthUser)
	assert.Equal(t, []sip.Header{{Name: "X-Room", Value: "42"}}, inv.Headers)

	// Media flows to the RTMP sink and the recording.
	var rt *fakeRTMP
	require.True(t, waitFor(func() bool { rt = e.w.rtmpSink("key1"); return rt != nil }))
	e.log.waitStatus(t, "c1", StatusEstablished)
	require.True(t, waitFor(func() bool { return c.Info().RTMPStatus == SinkActive }))
	sess := e.w.session(c.ID())
	require.NotNil(t, sess)
	sess.frame(media.Frame{Codec: media.CodecH264, Keyframe: true, PTS: 0, Payload: []byte{0, 0, 0, 1, 0x65}})
	sess.frame(media.Frame{Codec: media.CodecPCMA, PTS: 20 * time.Millisecond, Payload: []byte{1, 2, 3}})
	frames, _ := rt.snapshot()
	require.Len(t, frames, 2)
	assert.Equal(t, media.CodecH264, frames[0].Codec)
	assert.Equal(t, 20*time.Millisecond, frames[1].PTS)
	e.w.mu.Lock()
	rec := e.w.recorders[info.RecordPath]
	e.w.mu.Unlock()
	require.NotNil(t, rec)
	rf, _ := rec.snapshot()
	assert.Len(t, rf, 2)

	// Find.
	assert.Len(t, e.m.FindAll(), 1)
	assert.Len(t, e.m.Find(Filter{RTMPURL: "rtmp://127.0.0.1/live", Status: StatusEstablished}), 1)
	assert.Empty(t, e.m.Find(Filter{Callee: "nobody"}))
	assert.Len(t, e.m.FindSinks(SinkFilter{CallID: "c1"}), 2)

	require.NoError(t, e.m.Terminate(ctx, "c1"))
	waitDone(t, c)
	assert.NoError(t, c.Err())
	assert.Equal(t, 1, e.w.dialog("c1").byeCount())
	_, closed := rt.snapshot()
	assert.True(t, closed, "RTMP sink flushed")
	_, closed = rec.snapshot()
	assert.True(t, closed, "recording flushed")
	assert.Equal(t, []Status{StatusTrying, StatusRing, StatusEstablished, StatusFinish}, e.log.statuses("c1"))
	assert.Equal(t, []SinkStatus{SinkWait, SinkActive}, e.log.sinkStatuses("c1", "c1/rtmp"))
	for _, ev := range e.log.events("c1") {
		if ev.Type == EventCallStatus && ev.Status == StatusEstablished {
			assert.Equal(t, info.RecordPath, ev.Info.RecordPath, "the ESTABLISHED event names the recording")
		}
	}
	assert.Empty(t, e.m.FindAll())
	assert.ErrorIs(t, e.m.Terminate(ctx, "c1"), ErrCallNotFound)
	assert.Zero(t, e.w.sessOpen.Load())

	// The password never shows.
	for _, ev := range e.log.events("c1") {
		assert.NotContains(t, fmt.Sprintf("%v %+v %#v", ev, ev, ev), "s3cret!")
	}
	assert.NotContains(t, e.buf.String(), "s3cret!")
	assert.NotContains(t, e.buf.String(), "key1", "stream key in logs")
	assert.Contains(t, e.buf.String(), "call ended")
}

func TestDuplicates(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	_, err := e.m.StartCall(ctx, CallParams{CallID: "d1", Callee: "ring@h", RTMPURL: "rtmp://h/app", RTMPStream: "s"})
	require.NoError(t, err)
	_, err = e.m.StartCall(ctx, CallParams{CallID: "d1", Callee: "ring@h"})
	assert.ErrorIs(t, err, ErrDuplicateCallID)
	_, err = e.m.StartCall(ctx, CallParams{CallID: "d2", Callee: "ring@h", RTMPURL: "RTMP://H/app/", RTMPStream: "s"})
	assert.ErrorIs(t, err, ErrDuplicateStream)
	c3, err := e.m.StartCall(ctx, CallParams{CallID: "d3", Callee: "ring@h", RTMPURL: "rtmp://h/app", RTMPStream: "other"})
	require.NoError(t, err)
	require.NoError(t, e.m.Terminate(ctx, "d1"))
	// Both freed once the call is gone.
	c, err := e.m.StartCall(ctx, CallParams{CallID: "d1", Callee: "ring@h", RTMPURL: "rtmp://h/app", RTMPStream: "s"})
	require.NoError(t, err)
	require.NoError(t, c.Terminate(ctx))
	require.NoError(t, c3.Terminate(ctx))
}

func TestMaxCallsAndMediaFailure(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.MaxCalls = 1 })
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{Callee: "ring@h"})
	require.NoError(t, err)
	_, err = e.m.StartCall(ctx, CallParams{Callee: "ring@h"})
	assert.ErrorIs(t, err, ErrTooManyCalls)
	require.NoError(t, c.Terminate(ctx))
	e.w.mu.Lock()
	e.w.mediaNewFail = true
	e.w.mu.Unlock()
	_, err = e.m.StartCall(ctx, CallParams{CallID: "x", Callee: "ring@h"})
	assert.ErrorContains(t, err, "no free ports")
	assert.Empty(t, e.m.FindAll())
}

func TestEndings(t *testing.T) {
	cases := []struct {
		name      string
		callee    string
		rtmpURL   string
		act       func(e *testEnv, c *Call)
		status    Status
		code      int
		errIs     error
		byes      int
		cancelled bool
	}{
		{name: "busy", callee: "busy@h", status: StatusBusy, code: 486},
		{name: "rejected", callee: "reject@h", status: StatusFailed, code: 503},
		{name: "bad sdp", callee: "badsdp@h", status: StatusFailed, code: 488, errIs: ErrNegotiation, byes: 1},
		{name: "cancelled while ringing", callee: "ring@h", status: StatusFinish, code: 487, errIs: ErrCallEnded, cancelled: true,
			act: func(e *testEnv, c *Call) {
				e.log.waitStatus(e.t(), c.ID(), StatusRing)
				ctx, cancel := context.WithCancel(context.Background())
				cancel() // a cancelled request still cancels the call
				_ = c.Terminate(ctx)
			}},
		{name: "ring timeout", callee: "ringmedia@h", status: StatusFailed, code: 408, errIs: ErrNoAnswer, cancelled: true},
		{name: "peer bye", callee: "hangup@h", status: StatusFinish, code: 200, errIs: ErrRemoteHangup,
			act: func(e *testEnv, c *Call) {
				require.NoError(e.t(), c.WaitEstablished(ctxT(e.t())))
				e.w.dialog(c.ID()).peerBye()
			}},
		{name: "we hang up", callee: "answer@h", status: StatusFinish, code: 200, byes: 1,
			act: func(e *testEnv, c *Call) {
				require.NoError(e.t(), c.WaitEstablished(ctxT(e.t())))
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				_ = c.Terminate(ctx) // returns ctx.Err at once; the BYE still goes out
			}},
		{name: "media timeout", callee: "answer@h", status: StatusFailed, code: 200, errIs: ErrMediaTimeout, byes: 1,
			act: func(e *testEnv, c *Call) {
				require.NoError(e.t(), c.WaitEstablished(ctxT(e.t())))
				e.w.session(c.ID()).cfg.OnTimeout("no RTP for 30s")
			}},
		{name: "rtmp failed", callee: "answer@h", rtmpURL: "rtmp://fail.invalid/app", status: StatusFailed, code: 200,
			errIs: ErrRTMPFailed, byes: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, func(c *Config) { c.RingTimeout = 200 * time.Millisecond })
			e.tt = t
			c, err := e.m.StartCall(ctxT(t), CallParams{CallID: "e1", Callee: tc.callee, RTMPURL: tc.rtmpURL, RTMPStream: "s",
				RingTimeout: map[bool]time.Duration{true: 50 * time.Millisecond}[tc.name == "ring timeout"]})
			require.NoError(t, err)
			if tc.act != nil {
				tc.act(e, c)
			}
			waitDone(t, c)
			info := c.Info()
			assert.Equal(t, tc.status, info.Status)
			assert.Equal(t, tc.code, info.SIPStatus)
			assert.False(t, info.Ended.IsZero())
			if tc.errIs != nil {
				assert.ErrorIs(t, c.Err(), tc.errIs)
			}
			var se *SIPError
			if tc.code >= 300 {
				require.ErrorAs(t, c.Err(), &se)
				assert.Equal(t, tc.code, se.Code)
			}
			if d := e.w.dialog("e1"); d != nil {
				assert.Equal(t, tc.byes, d.byeCount(), "BYEs sent")
			} else {
				assert.Zero(t, tc.byes)
			}
			assert.Equal(t, tc.cancelled, e.w.cancels.Load() == 1, "INVITE cancelled")
			st := e.log.statuses("e1")
			assert.Equal(t, StatusTrying, st[0])
			assert.Equal(t, tc.status, st[len(st)-1])
			assert.Zero(t, e.w.sessOpen.Load())
			assert.Empty(t, e.m.FindAll())
			assert.ErrorIs(t, c.WaitEstablished(ctxT(t)), map[bool]error{true: nil, false: c.Err()}[info.Established.IsZero() == false])
		})
	}
}

func (e *testEnv) t() *testing.T { return e.tt }

func TestProgressStatuses(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "p1", Callee: "progress@h"})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	c2, err := e.m.StartCall(ctx, CallParams{CallID: "p2", Callee: "ringmedia@h"})
	require.NoError(t, err)
	e.log.waitStatus(t, "p2", StatusRingMedia)
	require.NoError(t, c.Terminate(ctx))
	require.NoError(t, c2.Terminate(ctx))
	waitDone(t, c)
	waitDone(t, c2)
	assert.Equal(t, []Status{StatusTrying, StatusSessionProgress, StatusEstablished, StatusFinish}, e.log.statuses("p1"))
	assert.Equal(t, []Status{StatusTrying, StatusRingMedia, StatusFinish}, e.log.statuses("p2"))
}

func TestRegister(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "r1", Callee: "answer", SIPLogin: "1001", SIPAuthName: "auth1001",
		SIPPassword: "pw", SIPDomain: "pbx.example", SIPRegisterRequired: true, SIPTransport: "TCP", SIPPort: 5070})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	assert.Equal(t, int32(1), e.w.regOpen.Load())
	e.w.mu.Lock()
	reg := e.w.registers[0]
	e.w.mu.Unlock()
	assert.Equal(t, account{User: "1001", AuthUser: "auth1001", Password: "pw", Domain: "pbx.example", Port: 5070, Transport: "tcp"}, reg)
	require.NoError(t, c.Terminate(ctx))
	assert.Zero(t, e.w.regOpen.Load(), "unREGISTERed")

	e.w.mu.Lock()
	e.w.regFail = true
	e.w.mu.Unlock()
	c, err = e.m.StartCall(ctx, CallParams{CallID: "r2", Callee: "answer", SIPLogin: "1001", SIPDomain: "pbx.example", SIPRegisterRequired: true})
	require.NoError(t, err)
	waitDone(t, c)
	assert.Equal(t, StatusFailed, c.Info().Status)
	assert.Equal(t, 403, c.Info().SIPStatus)
	assert.Nil(t, e.w.dialog("r2"), "no INVITE after a failed REGISTER")
}

func TestHoldByReinvite(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "h1", Callee: "answer@h", HasAudio: true})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	d := e.w.dialog("h1")
	ans, err := d.req.OnReinvite([]byte("sendonly"))
	require.NoError(t, err)
	assert.Equal(t, "answer", string(ans))
	assert.Equal(t, StatusHold, c.Info().Status)
	_, err = d.req.OnReinvite([]byte("sendrecv"))
	require.NoError(t, err)
	assert.Equal(t, StatusEstablished, c.Info().Status)
	_, err = d.req.OnReinvite([]byte("garbage"))
	assert.Error(t, err)
	sess := e.w.session(c.ID())
	sess.mu.Lock()
	n := len(sess.specs)
	last := sess.specs[n-1]
	sess.mu.Unlock()
	assert.Equal(t, 3, n, "Start + 2 Updates")
	assert.Equal(t, media.SendRecv, last[0].Direction, "audio sendrecv (hasAudio)")
	assert.Equal(t, media.RecvOnly, last[1].Direction, "video recvonly (!hasVideo)")
	require.NoError(t, c.Terminate(ctx))
	waitDone(t, c)
	_, err = d.req.OnReinvite([]byte("sendrecv"))
	assert.ErrorIs(t, err, ErrCallEnded)
	assert.Equal(t, []Status{StatusTrying, StatusRing, StatusEstablished, StatusHold, StatusEstablished, StatusFinish}, e.log.statuses("h1"))
}

func TestDTMF(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	ring, err := e.m.StartCall(ctx, CallParams{CallID: "ringing", Callee: "ring@h"})
	require.NoError(t, err)
	e.log.waitStatus(t, "ringing", StatusRing)
	assert.ErrorIs(t, e.m.SendDTMF(ctx, "ringing", "1", DTMFInfo), ErrNotEstablished)

	c, err := e.m.StartCall(ctx, CallParams{CallID: "t1", Callee: "answer@h"})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	require.NoError(t, e.m.SendDTMF(ctx, "t1", "12#a", DTMFRFC2833))
	require.NoError(t, e.m.SendDTMF(ctx, "t1", "5", DTMFInfo))
	require.NoError(t, e.m.SendDTMF(ctx, "t1", "*", DTMFInfoRelay))
	var pe *ParamError
	require.ErrorAs(t, e.m.SendDTMF(ctx, "t1", "12x", DTMFInfo), &pe)
	assert.Equal(t, "dtmf", pe.Field)
	assert.ErrorIs(t, e.m.SendDTMF(ctx, "t1", "", DTMFInfo), ErrInvalidParams)
	assert.ErrorIs(t, e.m.SendDTMF(ctx, "nope", "1", DTMFInfo), ErrCallNotFound)

	sess := e.w.session(c.ID())
	sess.mu.Lock()
	assert.Equal(t, []string{"12#A"}, sess.dtmf)
	sess.mu.Unlock()
	d := e.w.dialog("t1")
	d.mu.Lock()
	assert.Equal(t, []string{"5/false", "*/true"}, d.digits)
	d.mu.Unlock()

	// Digits from the peer become events.
	d.req.OnDTMF('7')
	sess.cfg.OnDTMF('9', 100*time.Millisecond)
	require.True(t, waitFor(func() bool {
		var got []rune
		for _, ev := range e.log.events("t1") {
			if ev.Type == EventDTMF {
				got = append(got, ev.Digit)
			}
		}
		return string(got) == "79"
	}))

	// Keyframe fallback by INFO.
	sess.cfg.OnKeyframeFallback()
	require.True(t, waitFor(func() bool { d.mu.Lock(); defer d.mu.Unlock(); return d.keyframes == 1 }))

	require.NoError(t, c.Terminate(ctx))
	assert.ErrorIs(t, c.SendDTMF(ctx, "1", DTMFInfo), ErrCallEnded)
	require.NoError(t, ring.Terminate(ctx))

	for _, tc := range []struct {
		in   string
		want DTMFType
		err  bool
	}{{"RFC2833", DTMFRFC2833, false}, {"info", DTMFInfo, false}, {"INFO_RELAY", DTMFInfoRelay, false}, {"", DTMFRFC2833, false}, {"SMS", 0, true}} {
		got, err := ParseDTMFType(tc.in)
		assert.Equal(t, tc.err, err != nil, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
		if !tc.err && tc.in != "" {
			assert.True(t, strings.EqualFold(tc.in, got.String()), tc.in)
		}
	}
}

func TestSinks(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "s1", Callee: "answer@h", ToStream: "room1"})
	require.NoError(t, err)

	// A sink can be added before the answer.
	custom := newFakeSink(e.w)
	si, err := e.m.AddSink(ctx, "s1", SinkSpec{ID: "ms-1", Sink: custom})
	require.NoError(t, err)
	assert.Equal(t, SinkKindCustom, si.Kind)
	assert.Equal(t, "room1", si.ToStream)
	_, err = e.m.AddSink(ctx, "s1", SinkSpec{ID: "ms-1", Sink: newFakeSink(e.w)})
	assert.ErrorIs(t, err, ErrDuplicateSinkID)
	e.w.sinksOpen.Add(-1) // that one was never attached (the caller keeps it)

	require.NoError(t, c.WaitEstablished(ctx))
	push, err := e.m.AddSink(ctx, "s1", SinkSpec{RTMPURL: "rtmp://127.0.0.1/live/room1-push"})
	require.NoError(t, err)
	assert.Equal(t, "rtmp://127.0.0.1/live", push.RTMPURL)
	assert.Equal(t, "room1-push", push.RTMPStream)
	assert.NotEmpty(t, push.ID)
	_, err = e.m.AddSink(ctx, "s1", SinkSpec{RTMPURL: "http://x/y"})
	assert.ErrorIs(t, err, ErrInvalidParams)
	_, err = e.m.AddSink(ctx, "s1", SinkSpec{RTMPURL: "rtmp://host"})
	assert.ErrorIs(t, err, ErrInvalidParams)
	_, err = e.m.AddSink(ctx, "zz", SinkSpec{RTMPURL: "rtmp://h/a/b"})
	assert.ErrorIs(t, err, ErrCallNotFound)

	sess := e.w.session(c.ID())
	sess.frame(media.Frame{Codec: media.CodecPCMA, Payload: []byte{1, 2, 3, 4}})
	require.NoError(t, e.m.MuteSink(ctx, "ms-1", true))
	sess.frame(media.Frame{Codec: media.CodecPCMA, Payload: []byte{1, 2, 3, 4}})
	sess.frame(media.Frame{Codec: media.CodecOpus, Payload: []byte{9}})
	sess.frame(media.Frame{Codec: media.CodecH264, Payload: []byte{0, 0, 0, 1, 0x41}})
	require.NoError(t, e.m.MuteSink(ctx, "ms-1", false))
	sess.frame(media.Frame{Codec: media.CodecOpus, Payload: []byte{9}})
	frames, _ := custom.snapshot()
	require.Len(t, frames, 4)
	assert.Equal(t, []byte{1, 2, 3, 4}, frames[0].Payload)
	assert.Equal(t, []byte{0xD5, 0xD5, 0xD5, 0xD5}, frames[1].Payload, "muted A-law is silence")
	assert.Equal(t, media.CodecH264, frames[2].Codec, "video passes while muted; opus withheld")
	assert.Equal(t, media.CodecOpus, frames[3].Codec)
	require.True(t, waitFor(func() bool { return len(e.log.sinkStatuses("s1", "ms-1")) == 2 }))
	assert.Equal(t, []SinkStatus{SinkWait, SinkActive}, e.log.sinkStatuses("s1", "ms-1"))

	assert.Len(t, e.m.FindSinks(SinkFilter{ToStream: "room1"}), 2)
	assert.Len(t, e.m.FindSinks(SinkFilter{Kind: SinkKindRTMP}), 1)

	rt := e.w.rtmpSink("room1-push")
	require.NoError(t, e.m.RemoveSink(ctx, push.ID))
	require.True(t, waitFor(func() bool { _, closed := rt.snapshot(); return closed }))
	assert.ErrorIs(t, e.m.RemoveSink(ctx, push.ID), ErrSinkNotFound)
	assert.ErrorIs(t, e.m.MuteSink(ctx, push.ID, true), ErrSinkNotFound)
	assert.Len(t, e.m.FindSinks(SinkFilter{}), 1)

	// A failing sink is detached and reported; the call goes on.
	custom.mu.Lock()
	custom.failErr = errors.New("disk full")
	custom.mu.Unlock()
	sess.frame(media.Frame{Codec: media.CodecPCMA, Payload: []byte{1}})
	require.True(t, waitFor(func() bool {
		s := e.m.FindSinks(SinkFilter{ID: "ms-1"})
		return len(s) == 1 && s[0].Status == SinkFailed && s[0].Reason == "disk full"
	}))
	assert.Equal(t, StatusEstablished, c.Info().Status)

	require.NoError(t, c.Terminate(ctx))
	_, closed := custom.snapshot()
	assert.True(t, closed)
	_, err = c.AddSink(ctx, SinkSpec{RTMPURL: "rtmp://h/a/b"})
	assert.ErrorIs(t, err, ErrCallEnded)
}

func TestRTMPFailureKeepCall(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.KeepCallOnRTMPFailure = true })
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "k1", Callee: "answer@h", RTMPURL: "rtmp://fail.invalid/app", RTMPStream: "s"})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	require.True(t, waitFor(func() bool { return c.Info().RTMPStatus == SinkFailed }))
	assert.Equal(t, "connection refused", c.Info().RTMPReason)
	assert.Equal(t, StatusEstablished, c.Info().Status)
	require.NoError(t, c.Terminate(ctx))
}

func TestCloseEndsEverything(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	var calls []*Call
	for i, callee := range []string{"answer@h", "ring@h", "answer@h", "ringmedia@h"} {
		c, err := e.m.StartCall(ctx, CallParams{CallID: fmt.Sprintf("x%d", i), Callee: callee, RTMPURL: "rtmp://h/app", Record: i == 0})
		require.NoError(t, err)
		calls = append(calls, c)
	}
	require.NoError(t, calls[0].WaitEstablished(ctx))
	require.NoError(t, calls[2].WaitEstablished(ctx))
	e.log.waitStatus(t, "x1", StatusRing)
	require.NoError(t, e.m.Close(ctx))
	require.NoError(t, e.m.Close(ctx), "idempotent")
	for _, c := range calls {
		select {
		case <-c.Done():
		default:
			t.Fatalf("call %s still live after Close", c.ID())
		}
		assert.Equal(t, StatusFinish, c.Info().Status)
	}
	assert.Equal(t, 1, e.w.dialog("x0").byeCount())
	assert.Equal(t, 1, e.w.dialog("x2").byeCount())
	assert.Equal(t, int32(2), e.w.cancels.Load())
	assert.Zero(t, e.w.sessOpen.Load())
	assert.Zero(t, e.w.sinksOpen.Load())
	_, err := e.m.StartCall(ctx, CallParams{Callee: "answer@h"})
	assert.ErrorIs(t, err, ErrClosed)
}

// TestHundredCalls starts 100 calls at once and ends them every way there
// is; afterwards nothing may be left: goroutines (goleak in TestMain), media
// sessions, sinks, registrations, manager entries.
func TestHundredCalls(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.RingTimeout = 2 * time.Second })
	ctx := ctxT(t)
	ways := []string{"we-bye", "peer-bye", "busy", "reject", "cancel", "timeout", "rtmp-failed", "badsdp", "media-timeout", "register"}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	calls := make([]*Call, 100)
	for i := 0; i < 100; i++ {
		way := ways[i%len(ways)]
		p := CallParams{CallID: fmt.Sprintf("h%03d", i), Callee: "answer@h", RTMPURL: "rtmp://h/app", RTMPStream: fmt.Sprintf("s%d", i),
			Record: i%3 == 0, SIPPassword: "pw"}
		switch way {
		case "busy":
			p.Callee = "busy@h"
		case "reject":
			p.Callee = "reject@h"
		case "cancel":
			p.Callee = "ring@h"
		case "timeout":
			p.Callee, p.RingTimeout = "ring@h", 20*time.Millisecond
		case "rtmp-failed":
			p.RTMPURL = "rtmp://fail.invalid/app"
		case "badsdp":
			p.Callee = "badsdp@h"
		case "register":
			p.SIPLogin, p.SIPDomain, p.SIPRegisterRequired = "u", "pbx.example", true
		}
		c, err := e.m.StartCall(ctx, p)
		require.NoError(t, err)
		calls[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch way {
			case "we-bye", "register":
				if err := c.WaitEstablished(ctx); err != nil {
					errs <- fmt.Errorf("%s: %w", c.ID(), err)
					return
				}
				_ = c.SendDTMF(ctx, "1", DTMFRFC2833)
				if err := c.Terminate(ctx); err != nil {
					errs <- err
				}
			case "peer-bye":
				if err := c.WaitEstablished(ctx); err != nil {
					errs <- fmt.Errorf("%s: %w", c.ID(), err)
					return
				}
				e.w.dialog(c.ID()).peerBye()
			case "cancel":
				if err := c.Terminate(ctx); err != nil {
					errs <- err
				}
			case "media-timeout":
				if err := c.WaitEstablished(ctx); err != nil {
					errs <- fmt.Errorf("%s: %w", c.ID(), err)
					return
				}
				e.w.session(c.ID()).cfg.OnTimeout("idle")
			}
			<-c.Done()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := map[string]Status{"we-bye": StatusFinish, "peer-bye": StatusFinish, "busy": StatusBusy, "reject": StatusFailed,
		"cancel": StatusFinish, "timeout": StatusFailed, "rtmp-failed": StatusFailed, "badsdp": StatusFailed,
		"media-timeout": StatusFailed, "register": StatusFinish}
	for i, c := range calls {
		assert.Equal(t, want[ways[i%len(ways)]], c.Info().Status, "%s (%s)", c.ID(), ways[i%len(ways)])
		st := e.log.statuses(c.ID())
		assert.Equal(t, StatusTrying, st[0])
		assert.True(t, st[len(st)-1].Final(), "%v", st)
	}
	assert.Empty(t, e.m.FindAll())
	assert.Empty(t, e.m.FindSinks(SinkFilter{}))
	assert.Zero(t, e.w.sessOpen.Load())
	assert.Zero(t, e.w.sinksOpen.Load())
	assert.Zero(t, e.w.regOpen.Load())
	e.m.mu.Lock()
	assert.Empty(t, e.m.calls)
	assert.Empty(t, e.m.streams)
	assert.Empty(t, e.m.sinkIDs)
	e.m.mu.Unlock()
}

// TestEventsSerialPerCall checks that a slow OnEvent never stalls a call and
// that events still arrive in order.
func TestEventsSerialPerCall(t *testing.T) {
	var (
		mu      sync.Mutex
		active  = map[string]int{}
		overlap bool
	)
	log := newEventLog()
	e := newTestEnv(t, func(c *Config) {
		c.OnEvent = func(ev Event) {
			mu.Lock()
			active[ev.CallID]++
			if active[ev.CallID] > 1 {
				overlap = true
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			log.add(ev)
			mu.Lock()
			active[ev.CallID]--
			mu.Unlock()
		}
	})
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "ev", Callee: "answer@h", RTMPURL: "rtmp://h/app"})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	for i := 0; i < 20; i++ {
		_, _ = c.AddSink(ctx, SinkSpec{Sink: newFakeSink(e.w)})
	}
	require.NoError(t, c.Terminate(ctx))
	waitDone(t, c)
	mu.Lock()
	assert.False(t, overlap)
	mu.Unlock()
	evs := log.events("ev")
	assert.Equal(t, StatusFinish, evs[len(evs)-1].Status, "the last event is the final status")
	assert.Equal(t, EventCallStatus, evs[len(evs)-1].Type)
	for i := 1; i < len(evs); i++ {
		assert.False(t, evs[i].Time.Before(evs[i-1].Time), "events in order")
	}
}

func TestRTMPSinkBeforeAnswer(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "pend", Callee: "ring@h"})
	require.NoError(t, err)
	si, err := c.AddSink(ctx, SinkSpec{ID: "early", RTMPURL: "rtmp://h/app", RTMPStream: "early"})
	require.NoError(t, err)
	assert.Equal(t, SinkWait, si.Status)
	assert.Nil(t, e.w.rtmpSink("early"), "created only once the call is answered")
	require.NoError(t, e.m.MuteSink(ctx, "early", true))
	require.NoError(t, e.m.RemoveSink(ctx, "early"))
	_, err = c.AddSink(ctx, SinkSpec{ID: "early2", RTMPURL: "rtmp://h/app", RTMPStream: "early2"})
	require.NoError(t, err)
	require.NoError(t, c.Terminate(ctx))
	waitDone(t, c)
	assert.Nil(t, e.w.rtmpSink("early2"))

	c, err = e.m.StartCall(ctx, CallParams{CallID: "pend2", Callee: "early@h", HasVideo: true})
	require.NoError(t, err)
	_, err = c.AddSink(ctx, SinkSpec{ID: "p2", RTMPURL: "rtmp://h/app/p2"})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	rt := e.w.rtmpSink("p2")
	require.NotNil(t, rt)
	assert.True(t, rt.cfg.Audio)
	assert.True(t, rt.cfg.Video)
	require.True(t, waitFor(func() bool {
		s := e.m.FindSinks(SinkFilter{ID: "p2"})
		return len(s) == 1 && s[0].Status == SinkActive
	}))
	require.NoError(t, c.Terminate(ctx))
}
