package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// The caller role: the load peer places the calls (to a gateway that
// accepts incoming calls) with the offer the callee answers with (PCMA and
// H.264 packetization mode 1, sendonly), and once a call is answered its
// media comes from the shared sender exactly as an answered call's does.

// callerPT is the H.264 payload type of the caller's offer (dynamic).
const callerPT = 96

// call places a call to target (a SIP URI) with Call-ID id and returns the
// sender's index of the call once it is answered, acknowledged and its
// media started.
func (u *loadUA) call(ctx context.Context, target, id string) (int, error) {
	if id == "" {
		return 0, errors.New("call: empty Call-ID")
	}
	var recipient sip.Uri
	if err := sip.ParseUri(target, &recipient); err != nil {
		return 0, fmt.Errorf("call: target %q: %w", target, err)
	}
	ap, vp := u.snd.ports()
	offer := answerSDP(calleeIP, uint64(rand32()), ap, vp, 8, callerPT)
	uc := &uaCall{answer: offer}
	u.mu.Lock()
	if _, dup := u.calls[id]; dup {
		u.mu.Unlock()
		return 0, fmt.Errorf("call: Call-ID %q in use", id)
	}
	u.calls[id] = uc // a BYE or re-INVITE of the gateway finds it
	u.mu.Unlock()
	idx, err := u.place(ctx, uc, recipient, id, offer)
	if err != nil {
		u.mu.Lock()
		delete(u.calls, id)
		u.mu.Unlock()
		return 0, err
	}
	return idx, nil
}

func (u *loadUA) place(ctx context.Context, uc *uaCall, recipient sip.Uri, id string, offer []byte) (int, error) {
	req := sip.NewRequest(sip.INVITE, recipient)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "load", Host: calleeIP, Port: u.port}, Params: sip.NewParams()}
	from.Params.Add("tag", strconv.FormatUint(uint64(rand32()), 16))
	callID := sip.CallIDHeader(id)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: recipient, Params: sip.NewParams()})
	req.AppendHeader(&callID)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer)
	dlg, err := u.dialog.WriteInvite(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("INVITE: %w", err)
	}
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		var de *sipgo.ErrDialogResponse
		if errors.As(err, &de) {
			return 0, fmt.Errorf("INVITE answered %d %s", de.Res.StatusCode, de.Res.Reason)
		}
		return 0, fmt.Errorf("INVITE: %w", err)
	}
	ans, err := parseOffer(dlg.InviteResponse.Body())
	if err == nil && (ans.AudioPT != 8 || ans.VideoPT != callerPT) {
		err = fmt.Errorf("answer chose payload types %d/%d, offered 8/%d", ans.AudioPT, ans.VideoPT, callerPT)
	}
	if err != nil {
		// Answered, but not with what we can send: end the call.
		_ = dlg.Ack(ctx)
		_ = dlg.Bye(ctx)
		return 0, fmt.Errorf("answer: %w", err)
	}
	c := u.snd.newCall(net.UDPAddrFromAddrPort(ans.AudioAddr), net.UDPAddrFromAddrPort(ans.VideoAddr), ans.AudioPT, ans.VideoPT)
	u.mu.Lock()
	uc.c, uc.dlg, uc.acked = c, dlg, true
	gone := u.calls[id] != uc // the gateway hung up already
	u.mu.Unlock()
	if err := dlg.Ack(ctx); err != nil {
		return 0, fmt.Errorf("ACK: %w", err)
	}
	if gone {
		return 0, errors.New("the gateway hung up at once")
	}
	u.snd.start(c)
	return c.idx, nil
}

// hangup stops call id's media and sends BYE. A call the gateway ended
// already is not an error.
func (u *loadUA) hangup(ctx context.Context, id string) error {
	u.mu.Lock()
	uc := u.calls[id]
	delete(u.calls, id)
	u.mu.Unlock()
	if uc == nil {
		return nil
	}
	if uc.c != nil {
		uc.c.stopped.Store(true)
	}
	if uc.dlg == nil {
		return nil
	}
	if err := uc.dlg.Bye(ctx); err != nil {
		var de sipgo.ErrDialogResponse
		if errors.As(err, &de) && de.Res.StatusCode == 481 {
			return nil // ended meanwhile
		}
		return fmt.Errorf("BYE: %w", err)
	}
	return nil
}
