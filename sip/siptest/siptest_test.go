package siptest

import (
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/media"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestAnswerAndRemoteBye(t *testing.T) {
	p := newPeer(t, Config{Script: Script{Audio: true}})
	u := newUAC(t, "udp")
	ctx := testCtx(t)
	offer := u.offer(false)
	from := &sip.FromHeader{DisplayName: "Alice Caller", Address: sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1"}, Params: sip.NewParams()}
	from.Params.Add("tag", "abc123")
	d, err := u.call(ctx, p.URI(), offer.Marshal(), sipgo.AnswerOptions{}, sip.NewHeader("X-Custom", "hello"), from)
	require.NoError(t, err)
	c, err := p.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	assert.Equal(t, "hello", c.Header("X-Custom"))
	assert.Equal(t, "Alice Caller", c.FromDisplayName())
	assert.Equal(t, string(offer.Marshal()), string(c.OfferSDP()))
	specs, err := offer.Negotiate(d.InviteResponse.Body())
	require.NoError(t, err)
	assert.Equal(t, media.CodecPCMA, specs[0].Formats[0].Codec)

	require.NoError(t, d.Bye(ctx))
	require.NoError(t, c.WaitBye(ctx))
	r, err := c.WaitEnd(ctx)
	require.NoError(t, err)
	assert.Equal(t, EndRemoteBye, r)
	_ = time.Second
}
