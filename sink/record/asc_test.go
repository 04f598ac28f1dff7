package record

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultASC(t *testing.T) {
	for _, c := range []struct {
		rate     uint32
		channels uint8
		want     []byte // nil: refused
	}{
		{48000, 2, []byte{0x11, 0x90}},
		{44100, 1, []byte{0x12, 0x08}},
		{8000, 1, []byte{0x15, 0x88}},
		{7350, 6, []byte{0x16, 0x30}},
		{8001, 1, nil}, // would need the explicit 24-bit rate
		{0, 1, nil},
		{48000, 0, nil},
		{48000, 7, nil}, // channel configuration 7 is 8 channels (7.1)
	} {
		got, err := defaultASC(c.rate, c.channels)
		if c.want == nil {
			require.Error(t, err, "%d Hz, %d channels", c.rate, c.channels)
			continue
		}
		require.NoError(t, err, "%d Hz, %d channels", c.rate, c.channels)
		assert.Equal(t, c.want, got, "%d Hz, %d channels", c.rate, c.channels)
	}
}
