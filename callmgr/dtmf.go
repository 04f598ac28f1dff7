package callmgr

import (
	"context"
	"fmt"
)

const maxDigits = 64

// validDigits checks DTMF digits: 0-9, *, #, A-D (a-d are upper-cased), at
// most 64.
func validDigits(digits string) (string, error) {
	if digits == "" {
		return "", paramErr("dtmf", "empty")
	}
	if len(digits) > maxDigits {
		return "", paramErr("dtmf", "more than %d digits", maxDigits)
	}
	b := []byte(digits)
	for i, ch := range b {
		switch {
		case ch >= '0' && ch <= '9', ch == '*', ch == '#', ch >= 'A' && ch <= 'D':
		case ch >= 'a' && ch <= 'd':
			b[i] = ch - 'a' + 'A'
		default:
			return "", paramErr("dtmf", "%q is not a DTMF digit (0-9 * # A-D)", rune(ch))
		}
	}
	return string(b), nil
}

// SendDTMF sends digits on the answered call and returns when they have been
// sent: as RFC 4733 telephone-events on the audio stream (DTMFRFC2833) or
// as one SIP INFO per digit (DTMFInfo, DTMFInfoRelay). Sequences sent
// concurrently on one call go out one after the other. ErrNotEstablished
// before the answer.
//
// Specification: RFC 4733 (telephone-event), RFC 6086 (INFO).
func (c *Call) SendDTMF(ctx context.Context, digits string, t DTMFType) error {
	digits, err := validDigits(digits)
	if err != nil {
		return err
	}
	if t > DTMFInfoRelay {
		return paramErr("type", "unknown DTMF type %d", t)
	}
	var (
		d dialog
		s mediaSession
	)
	err = c.do(ctx, func() error {
		if c.ending {
			return ErrCallEnded
		}
		if c.dlg == nil {
			return ErrNotEstablished
		}
		d, s = c.dlg, c.sess
		c.ops.Add(1)
		return nil
	})
	if err != nil {
		return err
	}
	defer c.ops.Done()
	c.logf(LogDTMF, LogInfo, "→ DTMF %s (%s)", digits, t)
	octx, cancel := c.opContext(ctx)
	defer cancel()
	c.dtmfMu.Lock()
	defer c.dtmfMu.Unlock()
	if t == DTMFRFC2833 {
		if err := s.SendDTMF(octx, digits); err != nil {
			return c.opErr(ctx, fmt.Errorf("callmgr: RFC 4733 DTMF: %w", err))
		}
		return nil
	}
	for _, r := range digits {
		if err := d.SendDTMF(octx, r, t == DTMFInfoRelay); err != nil {
			return c.opErr(ctx, fmt.Errorf("callmgr: DTMF by INFO: %w", err))
		}
	}
	return nil
}

// opErr reports ErrCallEnded for an operation cut short because the call
// ended (rather than the context error it saw).
func (c *Call) opErr(ctx context.Context, err error) error {
	if ctx.Err() == nil && c.life.Err() != nil {
		return ErrCallEnded
	}
	return err
}
