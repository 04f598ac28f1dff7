package rtmpsink_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/rtmp"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sink/rtmpsink"
)

func TestPublishRTMPS(t *testing.T) {
	cert := testenv.SelfSigned(t)
	srv, err := rtmp.NewServer(rtmp.ServerConfig{TLSConfig: cert.ServerConfig()})
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(l) }()
	defer func() {
		require.NoError(t, srv.Close())
		<-served
	}()
	sub := srv.Subscribe("rtmp", streamKey, 4096)
	defer sub.Close()

	st := newStatuses()
	s, err := rtmpsink.New(rtmpsink.Config{
		URL: "rtmps://" + l.Addr().String() + "/rtmp", StreamName: streamKey, Audio: true, Video: true,
		TLSConfig: cert.ClientConfig(), OnStatus: st.on,
	})
	require.NoError(t, err)
	f := sink.NewFanout(sink.FanoutConfig{})
	require.NoError(t, f.Add("rtmps", s, 1<<16))
	stop := make(chan struct{})
	done := pump(f, &source{}, time.Millisecond, stop)
	tags := collect(t, sub, 30)
	close(stop)
	<-done
	require.NoError(t, f.Close(context.Background()))
	checkStart(t, tags)
	assert.Equal(t, []rtmpsink.Status{rtmpsink.StatusWait, rtmpsink.StatusActive}, st.get())
}

func TestRTMPSUntrustedCertificateFails(t *testing.T) {
	cert := testenv.SelfSigned(t)
	srv, err := rtmp.NewServer(rtmp.ServerConfig{TLSConfig: cert.ServerConfig()})
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(l) }()
	defer func() {
		require.NoError(t, srv.Close())
		<-served
	}()
	st := newStatuses()
	s, err := rtmpsink.New(rtmpsink.Config{
		URL: "rtmps://" + l.Addr().String() + "/rtmp/" + streamKey, Audio: true,
		OnStatus: st.on, BackoffMin: 10 * time.Millisecond, GiveUpAfter: 200 * time.Millisecond,
	})
	require.NoError(t, err)
	defer s.Close(context.Background())
	require.Eventually(t, func() bool { return s.Status() == rtmpsink.StatusFailed }, 20*time.Second, 5*time.Millisecond)
	st.mu.Lock()
	reason := st.reasons[len(st.reasons)-1]
	st.mu.Unlock()
	assert.Contains(t, reason, "certificate")
	assert.NotContains(t, reason, streamKey)
}
