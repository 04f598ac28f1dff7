package callmgr

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
)

func TestHoldUnhold(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "h1", Callee: "answer@h", HasAudio: true, HasVideo: true})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	d := e.w.dialog("h1")
	sess := e.w.session("h1")

	require.NoError(t, c.Hold(ctx))
	assert.Equal(t, StatusHold, c.Info().Status)
	assert.True(t, c.Info().Held)
	require.NoError(t, c.Hold(ctx), "holding a held call is a no-op")
	offers := d.reinviteOffers()
	require.Len(t, offers, 1)
	assert.Regexp(t, `^audio \d+ sendonly; video \d+ sendonly$`, offers[0])
	sess.mu.Lock()
	last := sess.specs[len(sess.specs)-1]
	sess.mu.Unlock()
	assert.Equal(t, media.SendOnly, last[0].Direction)

	// The peer refreshes the session while held: our answer keeps holding.
	_, err = d.req.OnReinvite([]byte("sendrecv"))
	require.NoError(t, err)
	assert.Equal(t, StatusHold, c.Info().Status)
	sess.mu.Lock()
	last = sess.specs[len(sess.specs)-1]
	sess.mu.Unlock()
	assert.Equal(t, media.SendOnly, last[0].Direction, "still holding after the peer's refresh")

	require.NoError(t, c.Unhold(ctx))
	assert.Equal(t, StatusEstablished, c.Info().Status)
	assert.False(t, c.Info().Held)
	offers = d.reinviteOffers()
	require.Len(t, offers, 2)
	assert.Regexp(t, `^audio \d+ sendrecv; video \d+ sendrecv$`, offers[1])
	assert.Positive(t, sess.kf, "a keyframe asked for when media comes back")

	// A failed re-INVITE changes nothing.
	d.mu.Lock()
	d.reinvErr = &SIPError{Code: 488, Reason: "Not Acceptable Here"}
	d.mu.Unlock()
	err = c.Hold(ctx)
	var se *SIPError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 488, se.Code)
	assert.Equal(t, StatusEstablished, c.Info().Status)
	assert.False(t, c.Info().Held)

	require.NoError(t, c.Terminate(ctx))
	waitDone(t, c)
	assert.ErrorIs(t, c.Hold(ctx), ErrCallEnded)
	assert.Equal(t, []Status{StatusTrying, StatusRing, StatusEstablished, StatusHold, StatusEstablished, StatusFinish}, e.log.statuses("h1"))
}

func TestHoldNeedsAnswer(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "h2", Callee: "ring@h"})
	require.NoError(t, err)
	e.log.waitStatus(t, "h2", StatusRing)
	assert.ErrorIs(t, c.Hold(ctx), ErrNotEstablished)
	assert.ErrorIs(t, c.Transfer(ctx, "bob", ""), ErrNotEstablished)
	assert.ErrorIs(t, e.m.Hold(ctx, "nope"), ErrCallNotFound)
	require.NoError(t, c.Terminate(ctx))
}

func transferEvents(l *eventLog, callID string) []TransferInfo {
	var out []TransferInfo
	for _, ev := range l.events(callID) {
		if ev.Type == EventTransfer {
			out = append(out, *ev.Info.Transfer)
		}
	}
	return out
}

func TestTransferBlind(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "t1", Callee: "answer@h"})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	d := e.w.dialog("t1")

	// A refused transfer leaves the call up.
	require.NoError(t, c.Transfer(ctx, "sip:carol@h", ""))
	assert.ErrorIs(t, c.Transfer(ctx, "sip:dave@h", ""), ErrBusy, "one transfer at a time")
	d.notify(100, "Trying")
	d.notify(486, "Busy Here")
	require.True(t, waitFor(func() bool { return len(transferEvents(e.log, "t1")) == 2 }))
	tr := c.Info().Transfer
	require.NotNil(t, tr)
	assert.True(t, tr.Done)
	assert.False(t, tr.Succeeded())
	assert.Equal(t, 486, tr.Code)
	assert.Equal(t, StatusEstablished, c.Info().Status)
	assert.Zero(t, d.byeCount())

	// A successful one ends the call.
	require.NoError(t, c.Transfer(ctx, "bob", ""))
	d.notify(100, "Trying")
	d.notify(180, "Ringing")
	d.notify(200, "OK")
	waitDone(t, c)
	assert.Equal(t, StatusFinish, c.Info().Status)
	assert.Equal(t, 1, d.byeCount())
	assert.NoError(t, c.Err())
	d.mu.Lock()
	assert.Equal(t, []string{"sip:carol@h|", "bob|"}, d.refers)
	d.mu.Unlock()
	evs := transferEvents(e.log, "t1")
	require.Len(t, evs, 5)
	assert.Equal(t, "bob", evs[4].Target)
	assert.True(t, evs[4].Succeeded())
}

func TestTransferAttendedAndRefused(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	a, err := e.m.StartCall(ctx, CallParams{CallID: "ta", Callee: "answer@h"})
	require.NoError(t, err)
	b, err := e.m.StartCall(ctx, CallParams{CallID: "tb", Callee: "answer@h"})
	require.NoError(t, err)
	require.NoError(t, a.WaitEstablished(ctx))
	require.NoError(t, b.WaitEstablished(ctx))

	assert.ErrorIs(t, e.m.Transfer(ctx, "ta", "", "ta"), ErrInvalidParams)
	assert.ErrorIs(t, e.m.Transfer(ctx, "ta", "", "nope"), ErrCallNotFound)
	require.NoError(t, e.m.Transfer(ctx, "ta", "", "tb"))
	da := e.w.dialog("ta")
	da.mu.Lock()
	assert.Equal(t, []string{"|tb"}, da.refers)
	da.mu.Unlock()
	assert.True(t, a.Info().Transfer.Attended)

	db := e.w.dialog("tb")
	db.mu.Lock()
	db.noRefer = true
	db.mu.Unlock()
	assert.ErrorIs(t, e.m.Transfer(ctx, "tb", "bob", ""), ErrTransferNotSupported)

	da.mu.Lock()
	da.referErr = &SIPError{Code: 603, Reason: "Decline"}
	da.mu.Unlock()
	da.notify(0, "") // the first transfer's subscription ended without a report
	require.True(t, waitFor(func() bool { tr := a.Info().Transfer; return tr != nil && tr.Done }))
	err = e.m.Transfer(ctx, "ta", "bob", "")
	var se *SIPError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 603, se.Code)
	assert.Equal(t, StatusEstablished, a.Info().Status)
	require.NoError(t, a.Terminate(ctx))
	require.NoError(t, b.Terminate(ctx))
}

func TestEarlyMediaStreamed(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "em", Callee: "early@h", RTMPURL: "rtmp://h/app", RTMPStream: "s", Record: true})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	sess := e.w.session("em")
	sess.mu.Lock()
	n := len(sess.specs)
	sess.mu.Unlock()
	assert.Equal(t, 2, n, "started on the 183's SDP, updated by the answer")
	e.log.waitStatus(t, "em", StatusEstablished)
	assert.Equal(t, []Status{StatusTrying, StatusRingMedia, StatusEstablished}, e.log.statuses("em"))
	// The sinks were created with the early media, before ESTABLISHED.
	var rtmpBefore, recordBefore bool
	for _, ev := range e.log.events("em") {
		if ev.Status == StatusEstablished {
			break
		}
		if ev.Type == EventSinkStatus && ev.Sink.Kind == SinkKindRTMP {
			rtmpBefore = true
		}
		if ev.Type == EventSinkStatus && ev.Sink.Kind == SinkKindRecord {
			recordBefore = ev.Sink.Path != ""
		}
	}
	assert.True(t, rtmpBefore, "RTMP leg started with early media")
	assert.True(t, recordBefore, "recording named and started with early media")
	require.NoError(t, c.Terminate(ctx))
	waitDone(t, c)
}

// toneSource is n samples of a constant, then EOF.
type toneSource struct{ left int }

func (s *toneSource) SampleRate() int { return 8000 }
func (s *toneSource) Read(p []int16) (int, error) {
	n := min(len(p), s.left)
	for i := range n {
		p[i] = 1000
	}
	s.left -= n
	if s.left == 0 {
		return n, io.EOF
	}
	return n, nil
}

func TestInjectSound(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	ringing, err := e.m.StartCall(ctx, CallParams{CallID: "ringing", Callee: "ring@h", HasAudio: true})
	require.NoError(t, err)
	e.log.waitStatus(t, "ringing", StatusRing)
	assert.ErrorIs(t, e.m.InjectSound(ctx, "ringing", &toneSource{left: 1}, "x.wav"), ErrNotEstablished)
	require.NoError(t, ringing.Terminate(ctx))
	c, err := e.m.StartCall(ctx, CallParams{CallID: "is", Callee: "answer@h", HasAudio: true})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	sess := e.w.session("is")
	require.NoError(t, e.m.InjectSound(ctx, "is", &toneSource{left: 480}, "beep.wav"))
	assert.Equal(t, "beep.wav", c.Info().InjectedSound)
	src := sess.audioSource()
	require.NotNil(t, src)
	assert.Equal(t, 8000, src.SampleRate())
	buf := make([]int16, 160)
	for range 3 {
		_, err = src.Read(buf)
	}
	assert.ErrorIs(t, err, io.EOF)
	require.True(t, waitFor(func() bool { return c.Info().InjectedSound == "" }), "the end of the sound is reported")
	assert.Nil(t, sess.audioSource(), "back to silence")
	// Events reach OnEvent from the call's dispatcher, after Info changed.
	audioEvents := func() int {
		n := 0
		for _, ev := range e.log.events("is") {
			if ev.Type == EventAudio {
				n++
			}
		}
		return n
	}
	require.True(t, waitFor(func() bool { return audioEvents() >= 2 }), "the sound's start and end reported: %d", audioEvents())
	assert.Equal(t, 2, audioEvents())

	c2, err := e.m.StartCall(ctx, CallParams{CallID: "na", Callee: "answer@h"})
	require.NoError(t, err)
	require.NoError(t, c2.WaitEstablished(ctx))
	assert.ErrorIs(t, c2.InjectSound(ctx, &toneSource{left: 1}, "x"), ErrNoAudio)
	assert.ErrorIs(t, c.InjectStream(ctx, "no-such-stream"), ErrStreamNotFound)
	require.NoError(t, c.Terminate(ctx))
	require.NoError(t, c2.Terminate(ctx))
	_ = context.Background
}
