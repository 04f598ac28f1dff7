// Command loadtest measures what sipstream costs per call, side by side
// with what users run instead: one ffmpeg per call remuxing the call's RTP
// to RTMP (video copied, G.711 to AAC).
//
// Usage (Linux: it reads /proc):
//
//	go run ./examples/loadtest -n 1,10,50 -duration 20s -ffmpeg-n 10,50
//
// For each count N in -n it places N concurrent calls through sipstream
// (a callmgr.Manager in this process, or a running examples/restserver
// with -rest URL -gateway-pid PID), keeps them up for -warmup plus
// -duration, hangs up, and reports. For each count in -ffmpeg-n it starts
// N ffmpeg processes instead, fed the same media without SIP:
//
//	ffmpeg -protocol_whitelist file,udp,rtp -i call.sdp -c:v copy -c:a aac -f flv rtmp://.../stream
//
// Both publish to the same RTMP receiver. Progress and a table go to
// stderr, one JSON object with every result to stdout.
//
// # Processes
//
// The program re-executes itself as the callee ("-role callee", or
// "-role caller" for incoming calls), a child in its own process group
// that holds everything that is not the system under test, so that none of
// it is counted as gateway CPU or memory:
//
//   - a SIP user agent (sipgo, one UDP socket) answering every INVITE with
//     200 OK (PCMA/8000 and H.264 packetization-mode 1, sendonly), and,
//     for incoming calls, placing them with that same SDP as its offer;
//   - one sender goroutine for all calls: every 20 ms it sends each call's
//     due audio (PCMA, a 1 kHz tone, 20 ms per packet, with 20 ms of
//     silence once a second as an A/V marker, see av_sync_ms) and video (a 6 s
//     640x360 25 fps H.264 clip at ≈800 kbit/s, IDR every second with SPS
//     and PPS, looped) on their real timing, with RTCP Sender Reports
//     every second mapping both RTP clocks to one NTP clock. The clip is
//     packetized once (FU-A above -mtu bytes); per call only the RTP header
//     and a 28-byte marker SEI are written, and each socket's datagrams go
//     out in one sendmmsg per tick;
//   - the RTMP receiver (sipstream's rtmp.Server), unless -rtmp names
//     another one (then there are no latency figures).
//
// # Incoming calls
//
// With -direction in (or -incoming) the child places the N calls to the
// gateway instead, each with its Call-ID and Request-URI user set to the
// call's ID, and streams the same media once a call is answered; the
// figures are the same as for outgoing calls. -direction both measures
// out then in at each N, side by side in the table (mode "sip-in").
// In-process, the Manager answers calls from -inbound-allow (default
// 127.0.0.0/8) with callmgr.AnswerWith, publishing to the receiver as
// stream = Request-URI user. With -rest, start the REST server with
// -inbound-rtmp-url rtmp://ADDR/live and -inbound-allow, give this tool
// -receiver-addr ADDR and -gateway-sip (the server's SIP address); the
// calls are followed with /call/find_all under their SIP Call-ID.
//
//	go run ./examples/loadtest -direction both -n 100
//
// # INVITE flood
//
// -flood N sends N INVITEs without credentials to the gateway's SIP port
// while each sipstream round's calls are live (after the measuring
// window), from a process of its own ("-role flooder", so that it slows
// neither the gateway's process nor the load peer's, whose receiver
// judges the harm): -flood-sources UDP sockets (default 2000), each
// bound to a random address of 127.0.0.0/8 other than 127.0.0.1 (the
// whole /8 is local on Linux), the INVITEs going round them, at
// -flood-rate per second (0: as fast as one goroutine writes). Each is a
// complete INVITE with an A/V offer; one without any answer is sent again
// after 500 ms, 1 s, 2 s, 4 s… as a UDP client transaction would, and
// final answers are acknowledged (-flood-no-ack: not, as an attacker
// would not). The in-process gateway then admits only -inbound-allow
// (default 127.0.0.1/32 with -flood, where the load caller is) and a
// digest user nobody knows the password of, so strangers get 401. The
// round's "flood" object reports the answers by status (none may be 2xx),
// the INVITEs never answered (-flood-wait after the last INVITE, default
// 10 s; 35 s covers a UDP client transaction's 32 s), how long sending and
// answering took, the machine's UDP receive-buffer drops meanwhile
// (rcvbuf_errors: at full speed the burst overflows the gateway's socket,
// and so does each wave of retransmissions), the gateway's own counts (callmgr IncomingCounts, in-process), and the live
// calls' continuity for -flood-before before the flood and while it ran
// (receiver phases: the least served stream's pictures per second,
// pictures that never arrived, by the marker's frame numbers, and the
// longest gap between two pictures or two audio frames of one stream,
// counting a stall up to the phase's end), and the gateway's goroutines,
// open fds and RSS before the flood and -settle after its end (the calls
// still up; sipgo keeps a transaction up to 32 s). harmed is true when a
// live stream stalled over 500 ms, fell under 90% of its pictures, or
// lost pictures it did not lose before.
//
//	go run ./examples/loadtest -direction in -n 20 -flood 10000 -settle 35s
//
// # Figures (per N and mode)
//
//   - cpu_per_stream_second: CPU-seconds (user+system) the gateway, or all
//     ffmpeg processes together, used per stream-second during the steady
//     window, which starts -warmup after all calls are up. 0.01 means one
//     core carries 100 such streams. cpu_cores is the same figure times N.
//   - mem_per_call_mb: sipstream's RSS at the end of the window minus its
//     RSS before the calls, divided by N (in-process: both read after
//     runtime.GC and debug.FreeOSMemory); for ffmpeg, the proportional set
//     size (PSS, shared pages divided among the processes) per process.
//     rss_after_mb is sipstream's RSS -settle (1 s) after the calls
//     ended. In -rest mode these are the server's VmRSS, without a
//     garbage collection. In-process, heap_base_mb/heap_after_mb are the
//     live heap, goroutines_before/goroutines_after the goroutine count,
//     and mem_base/mem_after break the memory down (heap in use, free heap
//     kept, stacks, runtime metadata, OS threads). RSS does not come back
//     to rss_base_mb after the first round, and that is not a leak: with
//     -settle 35s (past sipgo's transaction timers) the goroutines are back
//     to their count before the round and a heap profile diff
//     (-heap-profiles) holds only what the Go runtime keeps for reuse at
//     its high-water mark: goroutine descriptors (runtime.malg), OS
//     threads (runtime.allocm), sudogs of blocked channel operations, and
//     map buckets (maps never shrink: callmgr's Manager.calls/streams and
//     sip's UA.dialogs, media/session's PortPool, sip's udpGuard). Repeated
//     rounds of the same size (-repeat) add nothing measurable; see the
//     repository README's Performance section for figures.
//   - setup_rate: calls answered per second while placing them (at most
//     -in-flight at once, -ramp apart); calls_failed and errors (counted
//     by message); refused_overload: calls refused by admission control
//     (callmgr.ErrOverloaded with -max-cpu, callmgr.ErrTooManyCalls, HTTP
//     503), not counted as failed, with the first refusal's message in
//     refused_reason; streams_active: calls whose RTMP leg is ACTIVE at
//     the end of the window. In -rest mode calls are watched through
//     /call/find_all, polled every 200 ms, which bounds the setup rate
//     measured there.
//   - packets_lost, packets_late: the gateway's own counters (callmgr call
//     stats, in-process only), summed over the calls.
//   - receiver.latency_ms: for every picture, the time from the callee
//     sending its first RTP packet to the RTMP receiver getting it (one
//     process, one clock; pictures are matched by the marker SEI the
//     callee puts in each: call and frame number). late_frames: pictures
//     later than 100 ms. keyframe_interval_ms: between RTMP keyframes.
//     max_frame_gap_ms: the longest time between two pictures' arrival on
//     one stream (40 ms when none is late).
//   - receiver.av_sync_ms: A/V sync as a player shows it. Once a second
//     (frames 0, 25, 50…) the callee's audio carries 20 ms of silence
//     starting at the media time of that picture (both streams share
//     media time zero and the Sender Reports map both RTP clocks to one
//     NTP clock). For the first 4 streams of a round the receiver keeps
//     the published audio and, after the window, decodes it (AAC with the
//     repo's media/aac decoder from the AudioSpecificConfig of the
//     sequence header, or with ffmpeg when media/aac refuses the stream,
//     as it does ffmpeg's AAC, which uses the KBD window; G.711 with
//     media/g711), finds each silence (the centre of the quiet run minus
//     10 ms, so that encoder smearing at both ends cancels), takes its
//     presentation time (the tag's RTMP timestamp plus the sample's offset
//     in that tag's decoded output, which is what a player does: AAC's
//     one-frame decoder delay is not corrected for, a gateway has to stamp
//     its frames for it) and subtracts the RTMP timestamp (plus
//     composition time) of the picture it belongs to. median, max_abs
//     (ms; positive: audio late), markers, decoder. The same for ffmpeg's
//     output.
//   - receiver.audio_extra_latency_ms: the audio's latency computed
//     through the video's timestamps (an audio tag's RTMP timestamp is
//     turned into a send time with the mapping the video markers give)
//     minus the video's latency, median over streams: how much longer
//     audio takes to come out than video, i.e. AAC's framing and
//     look-ahead (1024 samples, 21 ms at sipstream's 48 kHz, 128 ms at
//     ffmpeg's 8 kHz, plus the encoder's look-ahead). It is not a sync
//     error: audio stamped right arrives later than its picture and a
//     player holds the picture for it; av_sync_ms is the sync.
//   - callee_cpu_per_stream_second: the callee process's own CPU (sender,
//     SIP, RTMP receiver), to check it did not starve the machine.
//
// When both modes ran at the same N, ratios gives ours over ffmpeg for CPU,
// memory and median latency.
//
// # Options worth knowing
//
// -max-cpu turns on the in-process gateway's admission control
// (callmgr Config.Admission.MaxCPU; off by default so that measurements
// are not cut short) and -ramp spaces the calls out, so that it can learn
// what a call costs: the calls it refuses are refused_overload, and the
// figures describe the calls it admitted. -record-flv writes the first
// stream of each round, as the receiver got it, to an FLV file (to check
// it with ffmpeg).
//
// -settle waits longer before the after-round memory figures, -repeat
// runs the rounds again (does memory come back each time?), and
// -heap-profiles DIR writes the in-process gateway's heap profile before
// and after each round (every allocation sampled: slower) for
// go tool pprof -base.
//
// -audio passthrough publishes G.711 as it comes (callmgr
// Config.RTMPAudioPassthrough) instead of AAC at 48 kHz. -webrtc adds a
// viewer-less WHEP sink to every call, as examples/restserver does by
// default, to reproduce its configuration in-process. -cpuprofile and
// -memprofile profile the in-process gateway (the heap profile is taken
// at the end of the largest round's window); -callee-cpuprofile profiles
// the callee. -rtp-ports bounds the gateway's RTP ports.
package main
