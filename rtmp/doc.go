// Package rtmp publishes live streams to RTMP and RTMPS servers (YouTube,
// Facebook Live, Twitch, nginx-rtmp, Wowza, FFmpeg) and contains a small
// server that accepts publishers and players.
//
// # Layers
//
// The wire layers are gortmplib's (github.com/bluenviron/gortmplib, the
// RTMP library MediaMTX is built on), except the chunk writer; this package
// is the layer above:
//
//	gortmplib/pkg/handshake   C0/C1/C2 and S0/S1/S2
//	gortmplib/pkg/rawmessage  chunk streams in: messages, chunk size,
//	                          acknowledgements
//	rtmp (chunkwriter.go)     chunk streams out: each message, or each
//	                          batch between Client.Hold and Flush, encoded
//	                          into one reused buffer and written at once
//	gortmplib/pkg/amf0        AMF0 values for commands and script data
//	rtmp/flv                  FLV tags and tag bodies (AVC, AAC, G.711,
//	                          Speex, Enhanced RTMP HEVC/Opus, onMetaData),
//	                          FLV files
//	rtmp                      commands and statuses: Client (publisher),
//	                          Server (publishers in, players and
//	                          Subscriptions out), URLs, Adobe
//	                          authentication, typed errors, redaction
//
// Why not gortmplib's Client, ServerConn and Writer as well: measured and
// read side by side (issue 14), its Client sends user=myuser in the
// second step of Adobe authentication whatever the URL says, has no
// typed refusal (a wrong stream key is a "bad result" string) and no
// publisher-side read limit; its Writer needs SPS and PPS before the
// first frame, never re-sends a changed sequence header, panics on an
// SPS mediacommon cannot parse, marks no Enhanced RTMP frame as a
// keyframe, and allocates about 23 times per 40 ms of A/V where this
// layer, writing FLV bodies in place, allocates nothing; its ServerConn keeps the connect command's app private
// (StreamInfo needs it to split "live/_definst_" from the stream name),
// answers every refusal NetStream.Publish.Unauthorized, and its message
// reader ends the connection on any codec it does not parse (Speex) or
// an AMF3 message. So both sides here work on raw message bodies, and
// relay what they do not understand.
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
// keyframe carries a different SPS or PPS. Frames are encoded in place
// and chunked into a reused buffer: no allocation per message, and one
// write (one system call) per message whatever its number of chunks, or
// per batch of frames between Hold and Flush (rtmpsink does that with what
// its queue holds). gortmplib's rawmessage.Writer, used before, allocated
// five times per message and wrote each chunk over 4 KiB on its own; it
// also writes the message stream ID big-endian, where the specification
// (and nginx-rtmp, ffmpeg, OBS) has it little-endian: ours writes it
// little-endian and swaps what gortmplib's reader decodes.
//
// What a publisher reads from its server is budgeted (1 MiB, then 4 KiB a
// second; a server sends a publisher about a byte a second), since the URL
// may point to a hostile server and gortmplib's reader holds up to 10 MiB
// per partial message on each of 62 chunk streams. AMF0 bodies over 64 KiB
// are not decoded (gortmplib's decoder has no nesting limit).
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
