// Package rtmpsink publishes a call to an RTMP or RTMPS server (YouTube,
// Facebook Live, Twitch, nginx-rtmp, Wowza) as a sink.Sink, through
// rtmp.Client.
//
// What it publishes:
//   - Video: H.264, starting (and resuming after every reconnect) on a
//     keyframe; the sink asks for one through Config.RequestKeyframe. VP8
//     cannot be published to RTMP platforms and is dropped.
//   - Audio in AudioAAC mode (the default): AAC-LC, 48 kHz mono 64 kbit/s
//     unless Config.AAC says otherwise. G.711 and Opus are transcoded in pure
//     Go (media/transcode's ToAAC, timestamps shifted for the encoder delay);
//     frames already AAC pass through with Config.AudioSpecificConfig; a
//     video-only call gets silent AAC. Speex cannot be decoded in pure Go and
//     is dropped (counted).
//   - Audio in AudioPassthrough mode: G.711 A-law/µ-law as FLV SoundFormat
//     7/8 (nginx-rtmp, Wowza and ffmpeg accept it; YouTube, Facebook and
//     Twitch do not), AAC as is; other codecs are dropped.
//   - An audio-only call gets a generated H.264 track (media/h264gen: a solid
//     colour, IDR at least every 2 s), since the platforms want both tracks;
//     Config.NoGeneratedVideo turns it off.
//   - A sound (SetSound: a media/sound Source, e.g. a file played for
//     /push/sound_on) is mixed into the published audio, paced by the
//     call's timestamps: before the AAC encoder in AudioAAC mode (in place
//     of the silence of a video-only call), in the G.711 domain in
//     AudioPassthrough mode; Config.OnSoundEnd reports its end.
//   - Platform rules: a keyframe at least every 2 s is asked for through
//     Config.RequestKeyframe when the peer's interval is longer.
//
// Timestamps: the call's timeline, relative to the first published frame.
// Frames older than that start (audio interleaved just before the first
// keyframe, the AAC encoder's first priming frame) are dropped and counted,
// not clamped to zero on top of each other; rtmp.Client then keeps each
// track's message timestamps strictly increasing in milliseconds whatever
// the call's frames do (see media.DTSGuard), so servers and players never
// see a DTS that stands still or goes back.
//
// Statuses are the neutral sink.State: StatusWait while the first
// connection is made, StatusActive once publishing, StatusLost when the
// connection drops, StatusActive again after a reconnect, and StatusFailed
// with a reason when it gave up (Config.GiveUpAfter).
// Stream keys and URL credentials never appear in statuses, errors or String.
package rtmpsink
