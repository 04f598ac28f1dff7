// Package rtmp publishes live streams to RTMP and RTMPS servers (YouTube,
// Facebook Live, Twitch, nginx-rtmp, Wowza, FFmpeg) and contains a small
// server that accepts publishers and players.
//
// # Layers
//
// The protocol is built bottom-up, one package per layer:
//
//	rtmp/handshake  C0/C1/C2 and S0/S1/S2 (the simple handshake)
//	rtmp/chunk      chunk stream reader and writer, message types,
//	                protocol control messages (chunk size, abort,
//	                acknowledgement window, user control events)
//	rtmp/amf0       AMF0 values for commands and script data
//	rtmp/flv        FLV tags and tag bodies (AVC, AAC, G.711, Speex,
//	                Enhanced RTMP HEVC/Opus, onMetaData), FLV files
//	rtmp            messages and commands: Client (publisher), Server
//	                (publishers in, players and Subscriptions out)
//
// # Client
//
// Dial runs the publish sequence that works with every major ingest:
// SetChunkSize(4096), connect (app, tcUrl, type "nonprivate", flashVer),
// releaseStream + FCPublish + createStream pipelined (Wowza never answers
// the first two, so only createStream's answer is awaited), publish(name,
// "live"), and waits for NetStream.Publish.Start. Refusals
// (NetStream.Publish.BadName, _error, a closed connection) come back as a
// *PublishError. Then WriteMetadata, WriteAVCConfig/WriteH264,
// WriteAACConfig/WriteAAC, WriteG711 and WriteSpeex send media; the AVC
// sequence header goes out on the first keyframe and again whenever a
// keyframe carries a different SPS or PPS. The write path allocates
// nothing per frame in steady state.
//
// Memory and blocking: the Client has no send queue. Each message is
// written with a deadline (ClientConfig.WriteTimeout), so a stalled server
// fails the Client instead of growing a buffer, and Close unblocks a write
// in progress and waits for the Client's reading goroutine. Queueing and
// dropping, when wanted, belong to the caller (sipstream's sink fan-out).
//
// URLs: rtmp:// (port 1935) and rtmps:// (TLS with SNI, port 443); app,
// instance and query ("rtmp://host/live/_definst_?a=b"); stream keys with
// query strings ("rtmps://live-api-s.facebook.com/rtmp/KEY?s_bl=1&a=x");
// credentials in the URL ("rtmp://user:pass@host/app/key", answered with
// Adobe authentication, authmod=adobe, when Wowza or Adobe Media Server
// ask for it). The stream key and password never appear in errors or
// String output.
//
// Timestamps: RTMP time is 32-bit milliseconds. Values and deltas of
// 0xFFFFFF (4 h 39 min) or more use the extended timestamp field, repeated
// in every continuation chunk (tested across the boundary against FFmpeg).
//
// # Server
//
// Server accepts publishers and players over TCP (Serve) and TLS
// (ServeTLS). ServerConfig.OnPublish can refuse a stream key.
// Server.Subscribe gives tests and embedders the tags of a published
// stream on a bounded queue that drops (and counts) rather than block the
// publisher; players are served the same way.
//
// Specifications: Adobe RTMP Specification 1.0 (December 2012); Adobe
// Flash Video File Format Specification 10.1 (FLV); Adobe Action Message
// Format AMF 0 (December 2007); Enhanced RTMP v1 and v2 (Veovera Software
// Organization, 2023-2024).
package rtmp
