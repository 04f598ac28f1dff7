package siptest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
)

// waitAudio waits until c received at least d of decoded audio and returns
// its second half-second on (the first packets may be the jitter of the
// start).
func waitAudio(t *testing.T, ctx context.Context, c *PeerCall, d time.Duration) []int16 {
	t.Helper()
	n := int(d / (20 * time.Millisecond))
	require.NoError(t, c.WaitRTP(ctx, media.KindAudio, n))
	got := c.ReceivedAudio()
	require.GreaterOrEqual(t, len(got), n*160)
	return got[len(got)/4:]
}

// A Peer calls another: the offer (audio and video), tones both ways,
// video, DTMF both ways by RFC 4733 and by INFO, the caller's BYE.
func TestCallPeerToPeer(t *testing.T) {
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			callee := newPeer(t, Config{User: "bob", Transport: transport, Script: Script{Audio: true, ToneHz: 1000, Video: true}})
			caller := newPeer(t, Config{User: "alice", Transport: transport})
			ctx := testCtx(t)
			call, err := caller.Call(ctx, callee.URI(), CallOptions{
				DisplayName: "Alice Caller",
				Headers:     []Header{{Name: "X-Test", Value: "hello"}},
				Script:      Script{Audio: true, ToneHz: 600, Video: true, SendSR: true},
			})
			require.NoError(t, err)
			assert.True(t, call.Outgoing())
			in, err := callee.WaitCall(ctx)
			require.NoError(t, err)
			require.NoError(t, in.WaitEstablished(ctx))
			assert.False(t, in.Outgoing())
			assert.Equal(t, call.CallID(), in.CallID())
			assert.Equal(t, "Alice Caller", in.FromDisplayName())
			assert.Equal(t, "hello", in.Header("X-Test"))
			assert.Contains(t, in.FromURI(), "sip:alice@127.0.0.1")
			assert.Equal(t, string(call.OfferSDP()), string(in.OfferSDP()))
			assert.Equal(t, string(in.AnswerSDP()), string(call.RemoteSDP()))
			offer := string(in.OfferSDP())
			for _, want := range []string{"PCMA/8000", "PCMU/8000", "telephone-event/8000", "H264/90000", "packetization-mode=1", "m=video"} {
				assert.Contains(t, offer, want)
			}
			assert.NotContains(t, offer, "opus")

			// Tones both ways, video towards the caller.
			heard := waitAudio(t, ctx, call, time.Second)
			assert.Greater(t, testmedia.Goertzel(heard, 8000, 1000), 0.8, "caller hears the callee's 1000 Hz")
			assert.Less(t, testmedia.Goertzel(heard, 8000, 600), 0.1)
			heard = waitAudio(t, ctx, in, time.Second)
			assert.Greater(t, testmedia.Goertzel(heard, 8000, 600), 0.8, "callee hears the caller's 600 Hz")
			assert.Less(t, testmedia.Goertzel(heard, 8000, 1000), 0.1)
			require.NoError(t, call.WaitRTP(ctx, media.KindVideo, 25))
			require.NoError(t, in.WaitRTP(ctx, media.KindVideo, 25))
			require.NoError(t, in.WaitRTCP(ctx, func(s RTCPStats) bool { return s.SenderReports > 0 }))

			// DTMF: RFC 4733 events then INFO, both ways.
			// (Each waits for the previous digits: RTP and SIP are read on
			// goroutines of their own, so they could be recorded out of order.)
			require.NoError(t, call.SendDTMF(ctx, "12"))
			_, err = in.WaitDTMF(ctx, 2)
			require.NoError(t, err)
			require.NoError(t, call.SendDTMFInfo(ctx, "#", 0))
			digits, err := in.WaitDTMF(ctx, 3)
			require.NoError(t, err)
			assert.Equal(t, "12#", digits)
			infos := in.Infos()
			require.Len(t, infos, 1)
			assert.Equal(t, "application/dtmf-relay", infos[0].ContentType())
			assert.Equal(t, "Signal=#\r\nDuration=100\r\n", string(infos[0].Body))
			require.NoError(t, in.SendDTMF(ctx, "9"))
			_, err = call.WaitDTMF(ctx, 1)
			require.NoError(t, err)
			require.NoError(t, in.SendDTMFInfo(ctx, "*", 250*time.Millisecond))
			digits, err = call.WaitDTMF(ctx, 2)
			require.NoError(t, err)
			assert.Equal(t, "9*", digits)
			assert.Error(t, call.SendDTMFInfo(ctx, "x", 0))

			require.NoError(t, call.Hangup(ctx))
			require.NoError(t, in.WaitBye(ctx))
			end, err := call.WaitEnd(ctx)
			require.NoError(t, err)
			assert.Equal(t, EndLocalBye, end)
		})
	}
}

// The callee hangs up: the caller records the BYE.
func TestCallRemoteBye(t *testing.T) {
	callee := newPeer(t, Config{Script: Script{Audio: true, HangupAfter: 300 * time.Millisecond}})
	caller := newPeer(t, Config{})
	ctx := testCtx(t)
	call, err := caller.Call(ctx, callee.URI(), CallOptions{NoVideo: true, Script: Script{Audio: true}})
	require.NoError(t, err)
	assert.NotContains(t, string(call.OfferSDP()), "m=video")
	require.NoError(t, call.WaitBye(ctx))
	end, err := call.WaitEnd(ctx)
	require.NoError(t, err)
	assert.Equal(t, EndRemoteBye, end)
	bye, ok := call.Bye()
	require.True(t, ok)
	assert.Equal(t, "BYE", bye.Method)
	assert.Greater(t, call.RTPPackets(media.KindAudio), 5)
	assert.ErrorIs(t, call.Hangup(ctx), ErrCallEnded)
}

// An INVITE without SDP: the callee offers in the 200 OK, the caller
// answers in the ACK, and media flows both ways.
func TestCallDelayedOffer(t *testing.T) {
	callee := newPeer(t, Config{Script: Script{Audio: true, ToneHz: 1000, Video: true}})
	caller := newPeer(t, Config{})
	ctx := testCtx(t)
	call, err := caller.Call(ctx, callee.URI(), CallOptions{DelayedOffer: true, Script: Script{Audio: true, ToneHz: 600}})
	require.NoError(t, err)
	assert.Empty(t, call.OfferSDP())
	in, err := callee.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, in.WaitEstablished(ctx))
	assert.Empty(t, in.OfferSDP())
	require.NoError(t, in.LateOfferError())
	// Each side's SDP is the other's remote one: the 200's offer, the ACK's answer.
	assert.Equal(t, string(in.AnswerSDP()), string(call.RemoteSDP()))
	assert.Equal(t, string(call.AnswerSDP()), string(in.RemoteSDP()))
	assert.Contains(t, string(in.RemoteSDP()), "m=video")

	heard := waitAudio(t, ctx, call, time.Second)
	assert.Greater(t, testmedia.Goertzel(heard, 8000, 1000), 0.8)
	heard = waitAudio(t, ctx, in, time.Second)
	assert.Greater(t, testmedia.Goertzel(heard, 8000, 600), 0.8)
	require.NoError(t, call.WaitRTP(ctx, media.KindVideo, 25))
	require.NoError(t, call.SendDTMF(ctx, "4"))
	digits, err := in.WaitDTMF(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, "4", digits)

	require.NoError(t, in.Hangup(ctx))
	require.NoError(t, call.WaitBye(ctx))
}

// A callee that challenges: the right password gets through (401 and 407),
// a wrong one is refused 403, none at all ends with the challenge.
func TestCallDigest(t *testing.T) {
	for _, code := range []int{401, 407} {
		callee := newPeer(t, Config{Users: map[string]string{"alice": "s3cret"}, ChallengeInvite: code, Script: Script{Audio: true}})
		caller := newPeer(t, Config{})
		ctx := testCtx(t)
		call, err := caller.Call(ctx, callee.URI(), CallOptions{User: "alice", Password: "s3cret", NoVideo: true, Script: Script{Audio: true}})
		require.NoError(t, err, code)
		in, err := callee.WaitCall(ctx)
		require.NoError(t, err)
		require.NoError(t, in.WaitEstablished(ctx))
		assert.Equal(t, 1, callee.Challenges())
		assert.Contains(t, in.Header(map[int]string{401: "Authorization", 407: "Proxy-Authorization"}[code]), `username="alice"`)
		require.NoError(t, call.Hangup(ctx))

		_, err = caller.Call(ctx, callee.URI(), CallOptions{User: "alice", Password: "wrong", NoVideo: true})
		var se *StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 403, se.Code)
		assert.NotContains(t, err.Error(), "wrong")

		_, err = caller.Call(ctx, callee.URI(), CallOptions{User: "alice", NoVideo: true})
		require.ErrorAs(t, err, &se)
		assert.Equal(t, code, se.Code)
		// AuthUser differs from the From user.
		call, err = caller.Call(ctx, callee.URI(), CallOptions{User: "1000", AuthUser: "alice", Password: "s3cret", NoVideo: true})
		require.NoError(t, err)
		require.NoError(t, call.Hangup(ctx))
	}
}

// Rejections, CANCEL after ringing (CancelAfter, or ctx), and target errors.
func TestCallRejectAndCancel(t *testing.T) {
	ctx := testCtx(t)
	caller := newPeer(t, Config{})
	busy := newPeer(t, Config{Script: Script{Reject: 486}})
	_, err := caller.Call(ctx, busy.URI(), CallOptions{})
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 486, se.Code)
	assert.Equal(t, "siptest: INVITE answered 486 Busy Here", err.Error())

	ringing := newPeer(t, Config{Script: Script{RingForever: true}})
	start := time.Now()
	_, err = caller.Call(ctx, ringing.URI(), CallOptions{CancelAfter: 200 * time.Millisecond})
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 487, se.Code)
	assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
	in, err := ringing.WaitCall(ctx)
	require.NoError(t, err)
	end, err := in.WaitEnd(ctx)
	require.NoError(t, err)
	assert.Equal(t, EndCanceled, end)

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = caller.Call(short, ringing.URI(), CallOptions{})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	in, err = ringing.WaitCall(ctx)
	require.NoError(t, err)
	end, err = in.WaitEnd(ctx)
	require.NoError(t, err)
	assert.Equal(t, EndCanceled, end)

	for _, target := range []string{"", "http://x", "sip:", "sip:a@"} {
		_, err := caller.Call(ctx, target, CallOptions{})
		assert.Error(t, err, target)
	}
	_, err = caller.Call(ctx, busy.URI(), CallOptions{Headers: []Header{{Name: "X-Bad", Value: "a\r\nb"}}})
	assert.Error(t, err)
	_, err = caller.Call(ctx, busy.URI(), CallOptions{Proxy: "nohost"})
	assert.Error(t, err)
	_ = caller.Close()
	_, err = caller.Call(ctx, busy.URI(), CallOptions{})
	assert.ErrorIs(t, err, ErrClosed)
}

// SRTP offered by the caller (RTP/SAVP, SDES) and accepted by the callee:
// the tones still get through both ways, so each side decrypts the other.
func TestCallSRTP(t *testing.T) {
	callee := newPeer(t, Config{Script: Script{Audio: true, ToneHz: 1000, SRTP: true}})
	caller := newPeer(t, Config{})
	ctx := testCtx(t)
	call, err := caller.Call(ctx, callee.URI(), CallOptions{NoVideo: true, Script: Script{Audio: true, ToneHz: 600, SRTP: true}})
	require.NoError(t, err)
	assert.Contains(t, string(call.OfferSDP()), "RTP/SAVP")
	assert.Contains(t, string(call.OfferSDP()), "a=crypto:")
	in, err := callee.WaitCall(ctx)
	require.NoError(t, err)
	heard := waitAudio(t, ctx, call, time.Second)
	assert.Greater(t, testmedia.Goertzel(heard, 8000, 1000), 0.8)
	heard = waitAudio(t, ctx, in, time.Second)
	assert.Greater(t, testmedia.Goertzel(heard, 8000, 600), 0.8)
	require.NoError(t, call.Hangup(ctx))

	// A callee without SRTP refuses the offer.
	plain := newPeer(t, Config{})
	_, err = caller.Call(ctx, plain.URI(), CallOptions{Script: Script{SRTP: true}})
	var se *StatusError
	require.True(t, errors.As(err, &se), err)
	assert.Equal(t, 488, se.Code)
}

// Early media: the callee's 183 with SDP starts the streams, so the
// caller hears its tone before the 200 (EarlyAudio), and media goes on
// after it; CANCEL during early media still ends the attempt with 487.
func TestCallEarlyMedia(t *testing.T) {
	callee := newPeer(t, Config{Script: Script{Ring: 700 * time.Millisecond, EarlyMedia: true, Audio: true, ToneHz: 1000}})
	caller := newPeer(t, Config{})
	ctx := testCtx(t)
	call, err := caller.Call(ctx, callee.URI(), CallOptions{NoVideo: true, Script: Script{Audio: true, ToneHz: 600}})
	require.NoError(t, err)
	early := call.EarlyAudio()
	require.GreaterOrEqual(t, len(early), 8000*4/10, "at least 400 ms of early media before the 200")
	assert.Greater(t, testmedia.Goertzel(early[len(early)/4:], 8000, 1000), 0.8)
	in, err := callee.WaitCall(ctx)
	require.NoError(t, err)
	heard := waitAudio(t, ctx, in, time.Second)
	assert.Greater(t, testmedia.Goertzel(heard, 8000, 600), 0.8, "the caller's tone after the answer")
	require.NoError(t, call.WaitRTP(ctx, media.KindAudio, len(early)/160+25), "media goes on after the answer")
	require.NoError(t, call.Hangup(ctx))

	// Without early media there is none to report.
	plain := newPeer(t, Config{Script: Script{Audio: true}})
	call, err = caller.Call(ctx, plain.URI(), CallOptions{NoVideo: true})
	require.NoError(t, err)
	assert.Nil(t, call.EarlyAudio())
	require.NoError(t, call.Hangup(ctx))

	ringing := newPeer(t, Config{Script: Script{RingForever: true, EarlyMedia: true, Audio: true}})
	_, err = caller.Call(ctx, ringing.URI(), CallOptions{NoVideo: true, CancelAfter: 300 * time.Millisecond})
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 487, se.Code)
}
