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
//   - Lossy (build tag interop, TestInteropLossy…, issue 11): the
//     gateway's own inbound RTP goes through internal/netsim (30 ms ± 25
//     ms, order kept, seeded random or burst loss) via
//     callmgr.Config.MediaListen; the phone is a real baresip called
//     through kamailio (marker media: a white flash and a tone burst every
//     second, so the A/V offset can be read back) or the siptest peer's
//     live encoder (NACK retransmission, or none for the conceal policy).
//     testenv's analyser reads the published stream back from nginx-rtmp
//     over 10 s from the first keyframe: frames, longest freeze, keyframe
//     interval, DTS errors, decode errors. Each logs one line starting
//     "LOSSY scenario=".
//
// Run them with
//
//	go test -race -p 1 ./internal/e2e/
//	go test -race -p 1 -tags interop -run Interop ./internal/e2e/
//
// E2E_KEEP_DIR=/some/dir keeps the streams the interop tests played back.
package e2e
