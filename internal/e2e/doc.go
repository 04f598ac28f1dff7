// Package e2e holds sipstream's cross-package end-to-end tests: a SIP peer
// (sip/siptest, or sipp for the interop tests) answers a call placed by a
// real callmgr.Manager, and what comes out of the sinks is checked by
// decoding it.
//
// The package has no non-test code. Its tests are:
//
//   - WHEP (no build tag, hermetic): a siptest peer streams the H.264 clip
//     of internal/testmedia and a 1 kHz PCMA tone; a sink/whep Sink is
//     attached to the call with Manager.AddSink and a pion/webrtc viewer
//     checks that every access unit it depacketizes is one of the clip's,
//     byte for byte, in an order a decoder can follow, and that the decoded
//     audio is the tone. Variants: an audio-only call plays audio-only, a
//     stuck sink on the same call does not disturb the viewer, and a viewer
//     that posts its offer while the call still rings gets the media once
//     it is answered.
//   - Interop (build tag interop, names TestInterop…): sipp answers (SIP
//     only; the phone's RTP comes from a replayer in the test, since sipp
//     3.6.1 cannot play audio and video pcaps in one call), the call's RTMP
//     leg publishes to a real nginx-rtmp, and ffmpeg plays the stream back
//     for ffprobe/ffmpeg to check: AAC-LC at 48 kHz, a 1 kHz tone with no
//     gap, a generated H.264 track with keyframes at most 2 s apart for
//     audio-only calls, Opus calls, and an audio+video call whose relayed
//     pictures are the clip's, byte for byte, with tone bursts in sync
//     with their IDRs.
//
// Run them with
//
//	go test -race -p 1 ./internal/e2e/
//	go test -race -p 1 -tags interop -run Interop ./internal/e2e/
//
// E2E_KEEP_DIR=/some/dir keeps the streams the interop tests played back.
package e2e
