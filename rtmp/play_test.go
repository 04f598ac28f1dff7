package rtmp

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	"github.com/sipstream/sipstream/rtmp/flv"
)

// TestPlay plays a stream from our Server with a minimal player written on
// the chunk layer, and checks the play sequence message by message: Stream
// Begin, Play.Reset, Play.Start, |RtmpSampleAccess, onMetaData, the AVC
// sequence header, every picture, then Stream EOF and UnpublishNotify.
func TestPlay(t *testing.T) {
	s, addr := startServer(t, ServerConfig{})
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(testTimeout)))
	_, _, err = handshake.DoClient(nc, false, false)
	require.NoError(t, err)
	p := newConn(nc, nc, testTimeout)
	require.NoError(t, p.writeCommand(csidCommand, 0, typeCommandAMF0, "connect", 1, amf0.Object{{Key: "app", Value: "live"}}))
	require.NoError(t, p.writeCommand(csidCommand, 0, typeCommandAMF0, "createStream", 2, nil))
	require.NoError(t, p.writeCommand(csidCommand, 1, typeCommandAMF0, "play", 3, nil, "x", -2000.0))

	// What the player sees, as short strings.
	events := make(chan string, 1024)
	go func() {
		defer close(events)
		for {
			m, err := p.readMessage()
			if err != nil {
				return
			}
			switch m.Type {
			case typeDataAMF0:
				name, _, _ := flv.ParseScript(m.Payload)
				events <- "data " + name
			case typeCommandAMF0:
				cmd, err := parseCommand(&m)
				if err != nil {
					continue
				}
				code, _, _ := cmd.info()
				if cmd.name == "_result" {
					continue
				}
				events <- cmd.name + " " + code
			case typeUserControl:
				ev, _, _ := m.userEvent()
				events <- fmt.Sprintf("event %d", ev)
			case typeVideo:
				v, err := flv.ParseVideo(m.Payload)
				if err == nil && v.SequenceHeader() {
					events <- "video config"
				} else {
					events <- fmt.Sprintf("video %d", m.Timestamp)
				}
			case typeAudio:
				events <- fmt.Sprintf("audio %d", m.Timestamp)
			}
		}
	}()
	next := func() string {
		select {
		case e := <-events:
			return e
		case <-time.After(testTimeout):
			t.Fatal("player got nothing")
			return ""
		}
	}
	require.Equal(t, "event 0", next()) // Stream Begin
	require.Equal(t, "onStatus "+codePlayReset, next())
	require.Equal(t, "onStatus "+codePlayStart, next())
	require.Equal(t, "data |RtmpSampleAccess", next())
	waitSubscribers(t, s, "live/x", 1)

	c, err := Dial(testCtx(t), "rtmp://"+addr+"/live/x", ClientConfig{})
	require.NoError(t, err)
	publishClip(t, c, 0, "")
	require.NoError(t, c.Close())

	require.Equal(t, "data onMetaData", next())
	require.Equal(t, "video config", next())
	for i := 0; i < 100; i++ {
		require.Equal(t, fmt.Sprintf("video %d", i*40), next())
	}
	require.Equal(t, "event 1", next()) // Stream EOF
	require.Equal(t, "onStatus "+codePlayUnpublish, next())
	require.Equal(t, "onStatus "+codePlayStop, next())
}

// waitSubscribers waits until key has n subscriptions (players included).
func waitSubscribers(t *testing.T, s *Server, key string, n int) {
	t.Helper()
	for deadline := time.Now().Add(testTimeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		s.mu.Lock()
		st := s.streams[key]
		got := 0
		if st != nil {
			got = len(st.subs)
		}
		s.mu.Unlock()
		if got >= n {
			return
		}
	}
	t.Fatalf("no subscriber on %s", key)
}
