package callmgr

import "time"

// MediaStats are one received stream's counters (they only grow) and
// jitter, as the media session measures them.
type MediaStats struct {
	PacketsReceived   uint64 // RTP packets accepted from the peer
	BytesReceived     uint64
	PacketsLost       uint64 // declared lost by the jitter buffer (after NACK)
	PacketsLate       uint64
	Frames            uint64 // whole frames handed to the sinks
	FramesDropped     uint64 // video frames dropped (holes, waiting for a keyframe)
	NACKsSent         uint64 // RTCP generic NACK packets sent (video)
	PacketsRecovered  uint64 // packets asked for with NACK that arrived afterwards
	KeyframeRequests  uint64 // PLI, FIR and SIP INFO requests sent
	KeyframesReceived uint64 // video keyframes handed to the sinks
	Freezes           uint64 // times the video froze after a loss, until a keyframe
	PacketsSent       uint64 // RTP sent to the peer (silence, DTMF)
	// StrangerPackets counts packets dropped because they came from an
	// address other than the peer's; InvalidPackets those that were not
	// RTP/RTCP or that the jitter buffer rejected; SRTPErrors those that
	// failed SRTP authentication or decryption.
	StrangerPackets, InvalidPackets, SRTPErrors uint64
	// SocketDrops counts datagrams the kernel dropped because the stream's
	// socket receive buffer was full (Linux; zero elsewhere): the process
	// did not read fast enough.
	SocketDrops uint64
	Jitter      time.Duration
	// FrozenTime is the total time the picture stood still because
	// frames were dropped, LongestFreeze the longest such time.
	FrozenTime, LongestFreeze time.Duration
	// KeyframeResponse is the peer's measured time from a keyframe
	// request to the keyframe (zero until measured).
	KeyframeResponse time.Duration
	// RTT is the round trip to the peer from RTCP (zero until measured).
	RTT time.Duration
	// KeyframeInterval is the time between the last two keyframes handed
	// to the sinks, by their PTS (video; zero until two came).
	KeyframeInterval time.Duration
}

// SinkStats are one sink's fan-out counters.
type SinkStats struct {
	ID            string
	FramesWritten uint64 // accepted by the sink
	FramesDropped uint64 // dropped because its queue was full
	FramesSkipped uint64 // video skipped while it waited for a keyframe
	Queued        int    // waiting in its queue now
	// BytesWritten counts the payload bytes of the frames the sink
	// accepted (after mute); an RTMP sink counts only while it is
	// connected (what it takes while connecting or reconnecting is not
	// published).
	BytesWritten uint64
	// Reconnects counts the times the sink's connection came back after
	// it was lost (an RTMP push reconnected).
	Reconnects uint64
}

// CallStats are a call's media and sink counters.
type CallStats struct {
	CallID       string
	Audio, Video MediaStats
	Sinks        []SinkStats
	// AVOffset is how far the video runs ahead of (positive) or behind
	// (negative) the audio where the sinks get them: the PTS of the last
	// video frame the fan-out was given minus that of the last audio
	// frame. Zero until the call has sent both. It measures the
	// interleaving of the two streams at the sinks' input (frames waiting
	// in the jitter buffers or for a keyframe widen it), not lip sync
	// inside a player.
	AVOffset time.Duration
}

// Stats returns the call's counters. It never waits for the call's run
// loop. After the call ended the media counters keep their last values and
// Sinks is empty.
func (c *Call) Stats() CallStats {
	a, v := c.sess.stats()
	v.KeyframeInterval = time.Duration(c.op.keyInterval.Load())
	sinks := c.fan.stats()
	for i := range sinks {
		if g := c.op.guard(sinks[i].ID); g != nil {
			sinks[i].BytesWritten = g.bytes.Load()
			sinks[i].Reconnects = g.reconnects.Load()
		}
	}
	return CallStats{CallID: c.id, Audio: a, Video: v, Sinks: sinks, AVOffset: c.op.avOffset()}
}
