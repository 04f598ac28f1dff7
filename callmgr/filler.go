package callmgr

import (
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/filler"
)

// newHoldFiller puts a media/filler between a call's media session and its
// fan-out: on hold the sinks get the last keyframe again every 500 ms and
// silence in the call's codec, on the call's timeline, so that platforms
// and players do not drop or stall the stream. needKeyframe asks the peer
// for a keyframe when its video comes back.
func newHoldFiller(out func(*media.Frame), needKeyframe func()) holdFiller {
	f, err := filler.New(filler.Config{OnNeedKeyframe: needKeyframe}, out)
	if err != nil {
		panic("callmgr: filler config: " + err.Error()) // a constant config: a bug
	}
	return f
}
