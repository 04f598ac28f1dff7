package wcsapi

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/sip"
)

// connectionFields are the SIP account fields. The current API sends them at
// the top level of /call/startup; the older one nests them in a
// "connection" object. Both are accepted, the top level winning.
type connectionFields struct {
	SIPLogin              flexString `json:"sipLogin"`
	SIPAuthenticationName flexString `json:"sipAuthenticationName"`
	SIPPassword           flexString `json:"sipPassword"`
	SIPDomain             flexString `json:"sipDomain"`
	SIPOutboundProxy      flexString `json:"sipOutboundProxy"`
	SIPPort               flexInt    `json:"sipPort"`
	SIPTransport          flexString `json:"sipTransport"`
	SIPRegisterRequired   flexBool   `json:"sipRegisterRequired"`
	AppKey                flexString `json:"appKey"`
	VisibleName           flexString `json:"visibleName"`
	// SIPVisibleName is the name the product's own pages give the display
	// name (wcs-docs "Stream capturing from a SIP call", Known issues 3:
	// sipVisibleName='Ralf C'); visibleName, the REST table's name, wins
	// when both are sent.
	SIPVisibleName flexString `json:"sipVisibleName"`
}

// startupRequest is the body of /call/startup.
type startupRequest struct {
	connectionFields
	CallID     flexString `json:"callId"`
	Callee     flexString `json:"callee"`
	ToStream   flexString `json:"toStream"`
	RTMPURL    flexString `json:"rtmpUrl"`
	RTMPStream flexString `json:"rtmpStream"`
	HasAudio   flexBool   `json:"hasAudio"`
	HasVideo   flexBool   `json:"hasVideo"`
	Record     flexBool   `json:"record"`
	// SRTP is the call's SRTP mode: "off", "optional", "required", or a
	// boolean (true: required). Absent means the server's -srtp.
	SRTP flexString `json:"srtp"`
	// SIPHeaders are extra headers for the INVITE, name to value.
	SIPHeaders map[string]flexString `json:"sipHeaders"`
	// Connection is the older body shape's nested SIP account.
	Connection *connectionFields `json:"connection"`
}

// merged returns the SIP account fields with the nested connection object's
// values filling the ones absent at the top level.
func (r *startupRequest) merged() connectionFields {
	c := r.connectionFields
	n := r.Connection
	if n == nil {
		return c
	}
	fill := func(dst *flexString, src flexString) {
		if *dst == "" {
			*dst = src
		}
	}
	fill(&c.SIPLogin, n.SIPLogin)
	fill(&c.SIPAuthenticationName, n.SIPAuthenticationName)
	fill(&c.SIPPassword, n.SIPPassword)
	fill(&c.SIPDomain, n.SIPDomain)
	fill(&c.SIPOutboundProxy, n.SIPOutboundProxy)
	fill(&c.SIPTransport, n.SIPTransport)
	fill(&c.AppKey, n.AppKey)
	fill(&c.VisibleName, n.VisibleName)
	fill(&c.SIPVisibleName, n.SIPVisibleName)
	if !c.SIPPort.Set {
		c.SIPPort = n.SIPPort
	}
	if !c.SIPRegisterRequired.Set {
		c.SIPRegisterRequired = n.SIPRegisterRequired
	}
	return c
}

// fieldError is a 400: which field, and what is wrong with it.
type fieldError struct {
	Field  string
	Reason string
}

func (e *fieldError) Error() string { return e.Field + ": " + e.Reason }

func badField(field, format string, args ...any) error {
	return &fieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// startParams is a validated /call/startup request, in the server's terms.
type startParams struct {
	CallID, Callee, ToStream    string
	RTMPURL, RTMPStream         string
	HasAudio, HasVideo, Record  bool
	SIPLogin, SIPAuthName       string
	SIPPassword                 string
	SIPDomain, SIPOutboundProxy string
	SIPPort                     int
	SIPTransport                string
	SIPRegisterRequired         bool
	AppKey, VisibleName         string
	Headers                     [][2]string
	SRTP                        callmgr.SRTPMode
}

// validate checks a startup request the way the SIP grammar and the product
// require, and returns the parameters or a *fieldError (several joined).
func (r *startupRequest) validate() (startParams, error) {
	c := r.merged()
	p := startParams{
		CallID:              strings.TrimSpace(string(r.CallID)),
		Callee:              strings.TrimSpace(string(r.Callee)),
		ToStream:            strings.TrimSpace(string(r.ToStream)),
		RTMPURL:             trimRTMPURL(string(r.RTMPURL)),
		RTMPStream:          strings.TrimSpace(string(r.RTMPStream)),
		HasAudio:            r.HasAudio.or(true),
		HasVideo:            r.HasVideo.or(true),
		Record:              r.Record.or(false),
		SIPLogin:            strings.TrimSpace(string(c.SIPLogin)),
		SIPAuthName:         strings.TrimSpace(string(c.SIPAuthenticationName)),
		SIPPassword:         string(c.SIPPassword),
		SIPDomain:           strings.TrimSpace(string(c.SIPDomain)),
		SIPOutboundProxy:    strings.TrimSpace(string(c.SIPOutboundProxy)),
		SIPPort:             c.SIPPort.Value,
		SIPTransport:        strings.ToLower(strings.TrimSpace(string(c.SIPTransport))),
		SIPRegisterRequired: c.SIPRegisterRequired.or(false),
		AppKey:              strings.TrimSpace(string(c.AppKey)),
		VisibleName:         strings.TrimSpace(string(c.VisibleName)),
	}
	visibleField := "visibleName"
	if p.VisibleName == "" {
		p.VisibleName = strings.TrimSpace(string(c.SIPVisibleName))
		visibleField = "sipVisibleName"
	}
	if p.VisibleName == "" {
		// The product reports the login as the caller's visibleName when
		// the client sent none: every call object and CallStatusEvent in
		// wcs-docs "Stream capturing from a SIP call" has visibleName ==
		// caller for a startup body without one (TestReplayWCSDocs).
		p.VisibleName = p.SIPLogin
		visibleField = "sipLogin"
	}
	var errs []error
	if mode, err := callmgr.ParseSRTPMode(string(r.SRTP)); err != nil {
		errs = append(errs, badField("srtp", "must be off, optional or required (or true/false)"))
	} else {
		p.SRTP = mode
	}
	if p.CallID == "" {
		errs = append(errs, badField("callId", "is required"))
	} else if err := checkCallID(p.CallID); err != nil {
		errs = append(errs, err)
	}
	if p.Callee == "" {
		errs = append(errs, badField("callee", "is required"))
	} else if err := sipField("callee", sip.ValidateCallee(p.Callee, p.SIPDomain)); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, checkSIPAccount(p.SIPLogin, p.SIPAuthName, p.SIPDomain, p.SIPOutboundProxy, c.SIPPort, p.SIPTransport)...)
	if p.VisibleName != "" && visibleField != "sipLogin" { // a valid user is a valid display name
		if err := sipField(visibleField, sip.ValidateDisplayName(p.VisibleName)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := checkRTMPURL(p.RTMPURL); err != nil {
		errs = append(errs, err)
	}
	if p.SIPRegisterRequired && (p.SIPLogin == "" || p.SIPDomain == "") {
		errs = append(errs, badField("sipRegisterRequired", "needs sipLogin and sipDomain"))
	}
	if !p.HasAudio && !p.HasVideo {
		// The product still places the call (recvonly on both); so do we.
		p.HasAudio, p.HasVideo = false, false
	}
	names := make([]string, 0, len(r.SIPHeaders))
	for name := range r.SIPHeaders {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		value := string(r.SIPHeaders[name])
		if err := sip.ValidateHeaderName(name); err != nil {
			errs = append(errs, badField("sipHeaders", "%q: %s", truncate(name, 40), sipReason(err)))
			continue
		}
		if err := sip.ValidateHeaderValue(value); err != nil {
			errs = append(errs, badField("sipHeaders", "the value of %s: %s", name, sipReason(err)))
			continue
		}
		p.Headers = append(p.Headers, [2]string{name, value})
	}
	if len(errs) > 0 {
		return startParams{}, errors.Join(errs...)
	}
	return p, nil
}

// checkSIPAccount checks the SIP account fields the way /call/startup and
// /registration/startup take them (trimmed; transport lower-cased): login
// and authentication name are SIP users, the domain a host[:port], the
// proxy a host[:port] or SIP URI, the port 1-65535 when sent, the transport
// UDP, TCP or TLS. It returns one *fieldError per fault.
func checkSIPAccount(login, authName, domain, proxy string, port flexInt, transport string) []error {
	var errs []error
	for _, f := range []struct {
		field, v string
		check    func(string) error
	}{
		{"sipLogin", login, sip.ValidateUser},
		{"sipAuthenticationName", authName, sip.ValidateUser},
		{"sipDomain", domain, sip.ValidateHostPort},
		{"sipOutboundProxy", proxy, sip.ValidateOutboundProxy},
	} {
		if f.v != "" {
			if err := sipField(f.field, f.check(f.v)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if port.Set && (port.Value < 1 || port.Value > 65535) {
		errs = append(errs, badField("sipPort", "must be between 1 and 65535"))
	}
	switch transport {
	case "", "udp", "tcp", "tls":
	default:
		errs = append(errs, badField("sipTransport", "must be UDP, TCP or TLS"))
	}
	return errs
}

// checkRTMPURL accepts an empty rtmpUrl or an rtmp:// or rtmps:// URL with
// a host (trimmed by trimRTMPURL first): /call/startup's rule, which the
// dial-in hook's answers follow too.
func checkRTMPURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "rtmp" && u.Scheme != "rtmps") || u.Host == "" {
		return badField("rtmpUrl", "must be an rtmp:// or rtmps:// URL")
	}
	return nil
}

// trimRTMPURL is an rtmpUrl as the product takes it: blanks around it and
// trailing slashes and blanks removed, so the product's own startup example
// "rtmp://localhost:1935/live /" (wcs-docs "Stream capturing from a SIP
// call", REST table) names application "live". The stream name (rtmpStream
// or the push's) is appended after a "/" later.
func trimRTMPURL(s string) string {
	return strings.TrimRight(strings.TrimSpace(s), "/ \t")
}

// The SIP grammar is package sip's, one for every layer (RFC 3261 §25.1);
// this layer only names the REST field at fault.

// checkCallID accepts a SIP Call-ID (sip.ValidateCallID) that is also safe
// in the URLs and JSON this API puts it in: no quotes, backslashes, angle
// or curly brackets, which RFC 3261's word allows.
func checkCallID(s string) error {
	if err := sip.ValidateCallID(s); err != nil {
		return sipField("callId", err)
	}
	if strings.ContainsAny(s, `"<>\{}`) {
		return badField("callId", "must not contain quotes, backslashes, angle or curly brackets")
	}
	return nil
}

// sipField relabels an error of sip's validators as the REST field name;
// nil stays nil.
func sipField(field string, err error) error {
	if err == nil {
		return nil
	}
	return badField(field, "%s", sipReason(err))
}

// sipReason is the reason a sip validator gave, without its field name.
func sipReason(err error) string {
	var pe *sip.ParamError
	if errors.As(err, &pe) {
		return pe.Reason
	}
	return err.Error()
}
