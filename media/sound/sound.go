// Package sound supplies PCM audio to the senders of a call: sound files
// (WAV, MP3, Ogg Opus) decoded in pure Go and played once or looped, and
// live audio taken from another stream. A sender (the media session's audio
// sender, an RTMP push's AAC encoder) pulls samples on its own clock and
// mixes or replaces what it would otherwise send.
//
// Load and Decode turn a WAV (PCM, float, A-law, µ-law), MP3 or Ogg Opus
// file into a Clip, mono PCM at the file's rate; Clip.Play makes it a
// Source at any rate, once or looped. Live is a Source fed with another
// call's audio frames. Mix sums sources and Resample converts one to
// another rate. Everything is pure Go: go-mp3 decodes MP3, pion/opus
// Opus, media/resample converts rates.
package sound

// Source is mono signed 16-bit PCM at a fixed sample rate, read in pieces
// on the reader's clock.
//
// Read must not block: a source backed by a file has its samples decoded
// already, and a live source with nothing buffered returns 0, nil (a gap
// the reader fills with silence). Read returns io.EOF once the source has
// ended for good; n may be positive together with io.EOF. A Source is read
// by one goroutine at a time.
type Source interface {
	// SampleRate is the rate of the samples Read returns, in Hz.
	SampleRate() int
	// Read fills p with the next samples and returns how many it wrote.
	Read(p []int16) (n int, err error)
}
