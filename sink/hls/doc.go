// Package hls republishes a call as Low-Latency HLS (fMP4 segments and
// parts), for browsers and players that do not speak WebRTC.
//
// A Sink is a sink.Sink fed by a call's sink.Fanout and, at the same time,
// an http.Handler serving the stream: index.m3u8 (the multivariant
// playlist), the media playlists, the init files, segments and parts. It
// serves by the last element of the request path, so a server mounts it
// anywhere, e.g. at /hls/{toStream}/ (with or without http.StripPrefix).
//
// The muxing is github.com/bluenviron/gohlslib/v2's (the muxer MediaMTX
// serves HLS with), segments about Config.SegmentDuration long (one second
// by default, extended to the next keyframe), parts about
// Config.PartDuration (200 ms by default). Specification: RFC 8216 and
// draft-pantos-hls-rfc8216bis (Low-Latency HLS).
//
// Video is H.264 as received (AVC access units, see media.Frame). Audio is
// AAC-LC: G.711 and Opus are transcoded by media/transcode's ToAAC, AAC
// frames pass through when Config.AudioSpecificConfig describes them. VP8
// and Speex have no place in HLS here and are counted as ignored.
//
// A Sink is cheap while idle: until the first video keyframe (or, for an
// audio-only sink, the first audio frame) it holds no muxer, no encoder and
// no buffer. From then on it keeps about Config.SegmentCount segments of
// media in memory. Close releases all of it and ends every request in
// flight. A Mux does the rest for a server: it serves every live stream
// of a Source at /hls/{name}/, makes a stream's Sink on the first request,
// closes it once no request came for a while (MuxConfig.Idle), and asks a
// MuxConfig.Authorize hook who may watch (package callmgr/wcsapi plugs its
// viewer tokens in there).
//
// The stream's timeline starts at the first keyframe: audio earlier than
// it is not published, and both tracks keep the call's common timeline
// from there, so lip sync is what the call has. Timestamps are kept
// strictly increasing per track (media.DTSGuard).
package hls
