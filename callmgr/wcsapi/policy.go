package wcsapi

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// checkStart applies -allow-callees and -allow-rtmp-hosts to a startup
// request: the callee (user@host; a bare number goes to sipDomain, else to
// the outbound proxy), the SIP domain and the outbound proxy must be
// allowed, and so must the RTMP host. A refusal is a 403 that names the
// field, never what a connection would have said.
func (s *server) checkStart(p startParams) error {
	if s.allowCallees.set() {
		user, host := calleeParts(p.Callee)
		if host == "" {
			host = hostOf(p.SIPDomain)
		}
		if host == "" {
			host = hostOf(p.SIPOutboundProxy)
		}
		if host == "" || !s.allowCallees.matchUserHost(user, host) {
			return errStatus(http.StatusForbidden, "callee: not allowed on this server (-allow-callees)")
		}
		if err := s.checkSIPHosts(p.SIPDomain, p.SIPOutboundProxy); err != nil {
			return err
		}
	}
	if p.RTMPURL != "" {
		return s.checkRTMP(p.RTMPURL)
	}
	return nil
}

// checkSIPHosts applies -allow-callees to a SIP domain and an outbound
// proxy (either may be empty): those of /call/startup and of
// /registration/startup.
func (s *server) checkSIPHosts(domain, proxy string) error {
	if !s.allowCallees.set() {
		return nil
	}
	if domain != "" && !s.allowCallees.matchHost(hostOf(domain)) {
		return errStatus(http.StatusForbidden, "sipDomain: not allowed on this server (-allow-callees)")
	}
	if proxy != "" && !s.allowCallees.matchHost(hostOf(proxy)) {
		return errStatus(http.StatusForbidden, "sipOutboundProxy: not allowed on this server (-allow-callees)")
	}
	return nil
}

// checkRTMP applies -allow-rtmp-hosts to an RTMP URL.
func (s *server) checkRTMP(raw string) error {
	if !s.allowRTMP.set() {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || !s.allowRTMP.matchHost(strings.ToLower(u.Hostname())) {
		return errStatus(http.StatusForbidden, "rtmpUrl: host not allowed on this server (-allow-rtmp-hosts)")
	}
	return nil
}

// ViewerToken is /rest-api/viewer/token's answer.
type ViewerToken struct {
	Token      string `json:"token"`
	StreamName string `json:"streamName"`
	CallID     string `json:"callId"`
	Expires    int64  `json:"expires"` // Unix milliseconds
	// WHEPURL is the WHEP endpoint with the token as a query (for players
	// that cannot send "Authorization: Bearer TOKEN").
	WHEPURL string `json:"whepUrl,omitempty"`
	// PlayerURL is the stand-alone player page playing the stream.
	PlayerURL string `json:"playerUrl,omitempty"`
	// HLSURL is the stream's HLS playlist with the token as a query
	// (carried into the URLs the playlists list).
	HLSURL string `json:"hlsUrl,omitempty"`
}

// viewerToken (POST /rest-api/viewer/token, admin only) issues a viewer
// token for a live call's WebRTC and HLS streams: streamName (the call's toStream)
// or callId, and ttl in seconds (default 3600, at most 86400).
func (s *server) viewerToken(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		StreamName flexString `json:"streamName"`
		ToStream   flexString `json:"toStream"`
		CallID     flexString `json:"callId"`
		TTL        flexInt    `json:"ttl"`
	}
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	if s.streamCall == nil && s.hlsCall == nil {
		return errStatus(http.StatusNotFound, "WebRTC and HLS playback are off on this server (-webrtc=false, -hls=false)")
	}
	name := strings.TrimSpace(string(req.StreamName))
	if name == "" {
		name = strings.TrimSpace(string(req.ToStream))
	}
	callID := strings.TrimSpace(string(req.CallID))
	if name == "" && callID == "" {
		return badField("streamName", "streamName (or toStream) or callId is required")
	}
	ttl := tokenTTL
	if req.TTL.Set {
		if req.TTL.Value < 1 || time.Duration(req.TTL.Value)*time.Second > tokenMaxTTL {
			return badField("ttl", "must be 1 to %d seconds", int(tokenMaxTTL/time.Second))
		}
		ttl = time.Duration(req.TTL.Value) * time.Second
	}
	var found *Call
	for _, c := range s.calls.Calls() {
		stream := c.StreamName
		if stream == "" {
			stream = c.CallID
		}
		if (name == "" || name == stream) && (callID == "" || callID == c.CallID) && !finalStatus(c.Status) {
			c.StreamName = stream
			found = &c
			break
		}
	}
	if found == nil {
		return errStatus(http.StatusNotFound, "no live call streams as that")
	}
	whep := s.streamCall != nil
	if whep {
		if live, ok := s.streamCall(found.StreamName); !ok || live != found.CallID {
			whep = false
		}
	}
	if !whep && s.hlsCall == nil {
		return errStatus(http.StatusNotFound, "that call has no WebRTC stream")
	}
	exp := s.now().Add(ttl)
	tok := s.tokens.issue(found.StreamName, found.CallID, exp)
	resp := ViewerToken{
		Token:      tok,
		StreamName: found.StreamName,
		CallID:     found.CallID,
		Expires:    exp.UnixMilli(),
	}
	if whep {
		resp.WHEPURL = "/whep/" + url.PathEscape(found.StreamName) + "?token=" + url.QueryEscape(tok)
		resp.PlayerURL = "/player/?whep=" + url.QueryEscape(resp.WHEPURL)
	}
	if s.hlsCall != nil {
		resp.HLSURL = "/hls/" + url.PathEscape(found.StreamName) + "/index.m3u8?token=" + url.QueryEscape(tok)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// finalStatus reports whether a call status is an end.
func finalStatus(st string) bool {
	return st == "FINISH" || st == "FAILED" || st == "BUSY"
}

// calleeAllowed applies -allow-callees to a transfer target: with a list,
// the target must name its host (user@host or a SIP URI) and match it.
func (s *server) calleeAllowed(target string) bool {
	if !s.allowCallees.set() {
		return true
	}
	user, host := calleeParts(target)
	return host != "" && s.allowCallees.matchUserHost(user, host)
}
