package rtmpsink

import (
	"context"

	"github.com/sipstream/sipstream/rtmp"
)

// dialRTMP connects and publishes with rtmp.Client; it returns once the
// server answered NetStream.Publish.Start.
func dialRTMP(ctx context.Context, c *cfgOK) (publisher, error) {
	cl, err := rtmp.Dial(ctx, c.URL, rtmp.ClientConfig{
		TLSConfig:    c.TLSConfig,
		DialTimeout:  c.DialTimeout,
		WriteTimeout: c.WriteTimeout,
		StreamName:   c.StreamName,
	})
	if err != nil {
		return nil, err
	}
	return cl, nil
}
