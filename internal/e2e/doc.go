// Package e2e holds sipstream's cross-package end-to-end tests: a SIP peer
// (sip/siptest, or sipp for the interop tests) calls into a real
// callmgr.Manager, and what comes out of the sinks is checked by decoding it.
//
// The package has no non-test code. Its tests are:
//
//   - the WHEP proof (no build tag, hermetic): a siptest peer streams the
//     H.264 clip of internal/testmedia and a 1 kHz tone; a sink/whep Sink is
//     attached to the call with Manager.AddSink and a pion/webrtc viewer checks
//     that the access units it depacketizes are the clip's, byte for byte, and
//     that the decoded audio carries the tone;
//   - the interop proofs (build tag interop, names TestInterop…): sipp as the
//     callee, PCMA RTP from a replayer in the test, an RTMP leg to a real
//     nginx-rtmp, and ffprobe/ffmpeg reading the stream back: AAC at 48 kHz,
//     a 1 kHz tone without gaps, and for audio-only calls a generated H.264
//     track with keyframes at most 2 s apart.
//
// Run them with
//
//	go test -race -p 1 ./internal/e2e/
//	go test -race -p 1 -tags interop -run Interop ./internal/e2e/
package e2e
