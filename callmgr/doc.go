// Package callmgr runs the lifecycle of the calls sipstream places and
// answers: it registers (optionally), sends the INVITE with an SDP offer (or
// answers one it was offered), follows the call through its statuses, starts
// the media session when the call is answered, and feeds the call's frames
// to its sinks: an RTMP leg, a recording, and any number of sinks added
// while the call is up (the REST API's /push targets, WebRTC viewers).
//
// # Using it
//
//	m, err := callmgr.New(callmgr.Config{
//		ListenAddr: "0.0.0.0:5060",
//		PublicIP:   netip.MustParseAddr("203.0.113.7"),
//		RecordDir:  "/var/lib/sipstream",
//		OnEvent:    func(ev callmgr.Event) { log.Println(ev.CallID, ev.Status) },
//	})
//	call, err := m.StartCall(ctx, callmgr.CallParams{
//		CallID:     "call-1",
//		Callee:     "sip:conference@pbx.example.com",
//		RTMPURL:    "rtmp://a.rtmp.youtube.com/live2",
//		RTMPStream: streamKey,
//		HasAudio:   true,
//		HasVideo:   true,
//	})
//	...
//	m.SendDTMF(ctx, "call-1", "1234#", callmgr.DTMFRFC2833)
//	m.Terminate(ctx, "call-1")
//	m.Close(ctx) // every call gets its BYE, every recording is closed
//
// # Answering calls
//
// With Config.OnIncoming set, the Manager takes calls (out-of-dialog
// INVITEs) from the callers Config.Inbound admits: an AllowFrom network, a
// digest user of Inbound.Users (challenged with 401), the registrar of one
// of Config.Accounts calling that account's user, or a phone or trunk
// registered to the Manager itself (Inbound.Registrar). Anyone else gets
// 401 or 403 before anything is allocated; more than Inbound.MaxPending
// INVITEs waiting at once, Config.MaxCalls or admission control give 503.
//
//	m, err := callmgr.New(callmgr.Config{
//		Inbound: callmgr.InboundConfig{AllowFrom: []netip.Prefix{pbxNet}},
//		OnIncoming: func(ctx context.Context, in callmgr.IncomingCall) (callmgr.Decision, error) {
//			d := callmgr.AnswerWith(callmgr.CallParams{
//				RTMPURL: "rtmp://live.example.com/app", RTMPStream: in.Callee, HasAudio: true,
//			})
//			d.Ring, d.EarlyMedia = 2*time.Second, true // 183 + silence while ringing
//			return d, nil
//		},
//	})
//
// OnIncoming runs on a goroutine of its own with a context that ends when
// the caller cancels or after Inbound.DecisionTimeout (480). It answers
// (AnswerWith: the CallParams of the call's sinks, as StartCall takes
// them), rejects (RejectWith) or redirects (RedirectTo). An answered call is
// an ordinary *Call, its ID the SIP Call-ID when that is free, with
// CallInfo.Incoming set; its statuses go RING (180) → RING_MEDIA (183 with
// early media: the caller hears Decision.EarlySound or silence, the sinks
// start at the answer) → ESTABLISHED (after the ACK; media timeouts count
// from there) → FINISH. A CANCEL while ringing ends it FINISH with 487;
// Terminate before the answer declines it (603), after the answer sends
// BYE. Hold, transfer, DTMF, injected sounds and sinks work as on a call
// the Manager placed. Manager.IncomingCounts counts the INVITEs by result.
//
// Config.Accounts (and Manager.AddAccount) are SIP accounts the Manager
// keeps registered, from New on and in the background: refreshed,
// retried with backoff after a failure, unregistered by RemoveAccount and
// Close. Manager.Registrations lists them (and the bindings of the
// Manager's own registrar); every change is an EventRegistration. An
// outgoing call with SIPRegisterRequired for a registered account's login
// and domain uses that registration instead of its own.
//
// # Statuses
//
// A call's Status goes: TRYING → RING / RING_MEDIA / SESSION_PROGRESS →
// ESTABLISHED ⇄ HOLD → FINISH, or BUSY / FAILED when it cannot be set up or
// breaks. CallInfo carries the last SIP status code and reason. Each sink
// has a SinkStatus, the neutral sink.State every sink reports: Wait →
// Active ⇄ Lost → Failed. Package callmgr/wcsapi owns the mapping of both to
// the REST API (RTMP_STREAM_WAIT, RTMP_STREAM_ACTIVE, RTMP_CONNECTION_LOST,
// RTMP_CONNECTION_FAILED for sinks). When the call's own RTMP leg fails for
// good the call is hung up (FAILED) unless Config.KeepCallOnRTMPFailure.
//
// Every change is an Event, delivered to Config.OnEvent in order, one at a
// time, from a goroutine that belongs to the call. Find and FindAll return
// snapshots at any time.
//
// # Call control
//
// An answered call can be put on hold and taken off it (Call.Hold,
// Call.Unhold: re-INVITE with a=sendonly, then a=sendrecv; the sinks get
// the last picture again every 500 ms and silence, so platforms and players
// keep the stream), transferred (Call.Transfer: REFER, blind or attended
// with Replaces; EventTransfer reports the peer's NOTIFYs and a successful
// transfer ends the call), and given audio to hear in place of the silence
// it is sent (Call.InjectSound with a media/sound Source such as a file
// loaded with sound.Load, Call.InjectStream with another call's live audio;
// G.711 calls only: no pure-Go Opus encoder exists). Manager.SetSinkSound
// mixes a sound into one RTMP push. Early media (a 18x with SDP) starts the
// media session and the call's sinks before the answer: ringback and IVR
// prompts are published with status RING_MEDIA, continuous into the
// answered call.
//
// # Rules
//
//   - Call IDs are unique among live calls (ErrDuplicateCallID), and so is
//     the pair RTMP URL + stream name of the calls' own RTMP legs
//     (ErrDuplicateStream). Sinks added with AddSink are not limited.
//   - Bad parameters give a *ParamError naming the field (FieldCallee,
//     FieldHeaders, ...: the CallParams field as Go spells it; a REST layer
//     maps it to its own name); it matches ErrInvalidParams. Everything
//     that goes into a SIP message is checked by package sip's validators
//     (sip.ValidateCallee, sip.ValidateUser, sip.ValidateHeader, ...), the
//     same rules the user agent applies, so a call that StartCall accepts
//     is not refused later for its syntax.
//   - The SIP password never appears in String output, logs, errors, events
//     or CallInfo. The RTMP stream name (a platform's stream key) and URL
//     credentials never appear in String output, logs or errors; CallInfo
//     and SinkInfo carry the stream name because the REST API returns it.
//   - However a call ends (BYE either way, rejected, cancelled, timed out,
//     media timeout, RTMP failure, Manager.Close) its ports, sockets,
//     goroutines and sinks are released; the BYE or CANCEL and the flushing
//     of recordings run on their own context with Config.TeardownTimeout,
//     so a cancelled request cannot skip them.
//
// # Counters
//
// Call.Stats returns a call's media counters (packets, loss, jitter, frames,
// keyframe requests) and each sink's fan-out counters (frames written,
// dropped, skipped); the REST server exports them as metrics.
//
// # Transports
//
// Calls go over UDP by default; CallParams.SIPTransport "tcp" or "tls"
// (with Config.SIPTLSConfig) choose otherwise. The user agent listens on
// Config.ListenAddr for UDP and TCP; Manager.ListenPort reports the port.
//
// # Concurrency
//
// One goroutine (the call's run loop) owns each call's dialog, media session
// and sink table. Methods send it requests and wait for the reply, the end
// of the call, or their context. Callbacks from the SIP user agent, the
// media session and the sinks never wait for it: they queue work in the
// call's inbox, so provisional responses, the answer and sink statuses are
// handled in the order they happened. Frames never pass through the run
// loop: the media session hands them to the fan-out, which gives every sink
// its own bounded queue.
//
// The SIP user agent (package sip), SDP (sip/sdp), media sessions
// (media/session), the fan-out (sink), RTMP sinks (sink/rtmpsink) and
// recorders (sink/record) plug in through small internal interfaces, which
// is how the call logic is tested without a network.
package callmgr
