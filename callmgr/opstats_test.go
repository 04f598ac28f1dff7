package callmgr

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sip/siptest"
)

// The log keeps the newest CallLogSize entries in order, and the watchers
// get every entry in order until they stop.
func TestCallLogRing(t *testing.T) {
	var l callLog
	var mu sync.Mutex
	var seen []string
	watch := func(id string, e LogEntry) {
		mu.Lock()
		seen = append(seen, id+":"+e.Text)
		mu.Unlock()
	}
	for i := range CallLogSize + 50 {
		l.add("c1", LogEntry{Kind: LogSIP, Level: LogInfo, Text: fmt.Sprint(i)}, watch)
	}
	got := l.entries()
	require.Len(t, got, CallLogSize)
	for i, e := range got {
		require.Equal(t, fmt.Sprint(i+50), e.Text, "oldest first, the first 50 dropped")
	}
	require.Len(t, seen, CallLogSize+50)
	require.Equal(t, "c1:0", seen[0])

	var short callLog
	short.add("c2", LogEntry{Text: "a"}, nil)
	short.add("c2", LogEntry{Text: "b"}, nil)
	require.Equal(t, []LogEntry{{Text: "a"}, {Text: "b"}}, short.entries())
}

// The Manager remembers the logs of the last endedLogs calls that ended.
func TestLogBookRemembersEnded(t *testing.T) {
	var b logBook
	for i := range endedLogs + 10 {
		l := &callLog{}
		l.add("x", LogEntry{Text: fmt.Sprint(i)}, nil)
		b.remember(fmt.Sprintf("c%d", i), l)
	}
	_, ok := b.endedLog("c0")
	require.False(t, ok, "the oldest are forgotten")
	l, ok := b.endedLog(fmt.Sprintf("c%d", endedLogs+9))
	require.True(t, ok)
	require.Equal(t, fmt.Sprint(endedLogs+9), l.entries()[0].Text)
	require.Len(t, b.ended, endedLogs)
	require.Len(t, b.order, endedLogs)
}

// The frame path of the operator's counters does not allocate: the
// fan-out input (A/V offset, keyframe interval) and the byte count of a
// sink.
func TestOperatorCountersDoNotAllocate(t *testing.T) {
	c := &Call{m: &Manager{}, fan: nopFanout{}}
	a := &media.Frame{Codec: media.CodecPCMA, Payload: make([]byte, 160), PTS: time.Second}
	v := &media.Frame{Codec: media.CodecH264, Payload: make([]byte, 1000), PTS: time.Second + 40*time.Millisecond, Keyframe: true}
	n := testing.AllocsPerRun(1000, func() {
		a.PTS += 20 * time.Millisecond
		v.PTS += 40 * time.Millisecond
		c.writeFan(a)
		c.writeFan(v)
	})
	require.Zero(t, n)
	require.Equal(t, 40*time.Millisecond, time.Duration(c.op.keyInterval.Load()))
	require.Equal(t, v.PTS-a.PTS, c.op.avOffset())

	g := &guardSink{inner: nopSink{}}
	n = testing.AllocsPerRun(1000, func() { _ = g.WriteFrame(a) })
	require.Zero(t, n)
	require.Equal(t, uint64(160*1001), g.bytes.Load())
	b := &guardSink{inner: nopBatch{}}
	fs := []*media.Frame{a, v}
	n = testing.AllocsPerRun(100, func() { _, _ = b.WriteFrames(fs) })
	require.Zero(t, n)
	require.Equal(t, uint64(1160*101), b.bytes.Load())
}

type nopFanout struct{}

func (nopFanout) Add(string, sink.Sink, int) error { return nil }
func (nopFanout) Remove(context.Context, string)   {}
func (nopFanout) WriteFrame(*media.Frame)          {}
func (nopFanout) Close(context.Context)            {}
func (nopFanout) stats() []SinkStats               { return nil }

// nopBatch is a sink.BatchWriter that keeps nothing.
type nopBatch struct{ nopSink }

func (nopBatch) WriteFrames(fs []*media.Frame) (int, error) { return len(fs), nil }

// Recording on and off on a live call: the errors, then a finalized file
// with its RecordingMeta.
func TestStartStopRecording(t *testing.T) {
	peer, err := siptest.NewPeer(siptest.Config{Script: siptest.Script{Audio: true, Video: true}})
	require.NoError(t, err)
	defer peer.Close()
	dir := t.TempDir()
	m, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 28000, RTPPortMax: 28499, RecordDir: dir, RecordFormat: "mkv"})
	require.NoError(t, err)
	defer m.Close(context.Background())
	off, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 28500, RTPPortMax: 28999})
	require.NoError(t, err)
	defer off.Close(context.Background())
	ctx := ctxT(t)

	_, err = m.StartRecording(ctx, "nope")
	require.ErrorIs(t, err, ErrCallNotFound)
	c, err := m.StartCall(ctx, CallParams{CallID: "rec", Callee: peer.URI(), ToStream: "show", HasAudio: true, HasVideo: true})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	require.ErrorIs(t, c.StopRecording(ctx), ErrSinkNotFound)
	info := c.Info()
	require.False(t, info.Recording())

	si, err := c.StartRecording(ctx)
	require.NoError(t, err)
	require.Equal(t, "rec/record", si.ID)
	require.Equal(t, dir, filepath.Dir(si.Path))
	require.True(t, strings.HasPrefix(filepath.Base(si.Path), "show-"), si.Path)
	_, err = c.StartRecording(ctx)
	require.ErrorIs(t, err, ErrRecording)
	info = c.Info()
	require.True(t, info.Recording())
	require.Equal(t, si.Path, info.RecordPath)
	time.Sleep(1500 * time.Millisecond)
	require.NoError(t, m.StopRecording(ctx, "rec"))
	meta, err := ReadRecordingMeta(si.Path)
	require.NoError(t, err, "the meta file is written by the time StopRecording returns")
	require.Equal(t, "rec", meta.CallID)
	require.Equal(t, "show", meta.ToStream)
	require.Equal(t, "mkv", meta.Format)
	require.InDelta(t, 1500, meta.DurationMs, 700)
	require.InDelta(t, time.Now().Add(-1500*time.Millisecond).UnixMilli(), meta.Started, 1500)
	st, err := os.Stat(si.Path)
	require.NoError(t, err)
	require.Greater(t, st.Size(), int64(10000))
	info = c.Info()
	require.False(t, info.Recording())

	// Again: a second file.
	si2, err := c.StartRecording(ctx)
	require.NoError(t, err)
	require.NotEqual(t, si.Path, si2.Path)
	require.NoError(t, c.Terminate(ctx))
	waitDone(t, c)
	_, err = ReadRecordingMeta(si2.Path)
	require.NoError(t, err, "the call's end finalizes it too")

	c2, err := off.StartCall(ctx, CallParams{CallID: "rec2", Callee: peer.URI(), HasAudio: true})
	require.NoError(t, err)
	require.NoError(t, c2.WaitEstablished(ctx))
	_, err = c2.StartRecording(ctx)
	require.ErrorIs(t, err, ErrNotConfigured)
}

// statsSession is a media session whose counters the test sets.
type statsSession struct {
	mediaSession
	v MediaStats
}

func (s *statsSession) stats() (MediaStats, MediaStats) { return MediaStats{}, s.v }

type stubDialog struct{ dialog }

// The run loop's look at the video counters logs a freeze when it starts
// (Freezes grew) and when it ends (FrozenTime grew, by how much), and the
// keyframe requests the session made on its own (beyond callmgr's).
func TestWatchMediaLogsFreezes(t *testing.T) {
	ss := &statsSession{}
	c := &Call{id: "w", m: &Manager{}, sess: ss, dlg: stubDialog{}}
	texts := func() []string {
		var out []string
		for _, e := range c.Log() {
			out = append(out, string(e.Level)+" "+e.Text)
		}
		return out
	}
	c.watchMedia()
	require.Empty(t, texts(), "nothing changed")
	ss.v.Freezes, ss.v.KeyframeRequests = 1, 1
	c.watchMedia()
	require.Equal(t, []string{"warn video frozen (frames lost; freeze 1)", "info → keyframe request ×1 (the session: loss, or a repeat)"}, texts())
	c.op.asked.Add(1) // callmgr asked for one: not the session's
	ss.v.KeyframeRequests = 2
	c.watchMedia()
	require.Len(t, texts(), 2)
	ss.v.FrozenTime = 420 * time.Millisecond
	c.watchMedia()
	require.Equal(t, "info video resumed after 420 ms frozen", texts()[2])
	ss.v.Freezes, ss.v.FrozenTime = 2, 500*time.Millisecond // a short freeze within a second
	c.watchMedia()
	require.Equal(t, []string{"warn video frozen (frames lost; freeze 2)", "info video resumed after 80 ms frozen"}, texts()[3:])
	c.ending = true
	ss.v.Freezes = 3
	c.watchMedia()
	require.Len(t, texts(), 5, "not while ending")
}

// An answered call's log: the INVITE received, our responses sent, the
// caller's BYE; no password.
func TestIncomingCallLog(t *testing.T) {
	m, _, caller, target := realInbound(t, func(ctx context.Context, in IncomingCall) (Decision, error) {
		d := AnswerWith(CallParams{HasAudio: true})
		d.Ring = 100 * time.Millisecond
		return d, nil
	})
	ctx := ctxT(t)
	pc, err := caller.Call(ctx, target, siptest.CallOptions{User: "trunk", Password: "trunk-secret",
		Script: siptest.Script{Audio: true, HangupAfter: 300 * time.Millisecond}})
	require.NoError(t, err)
	c, ok := m.Call(pc.CallID())
	require.True(t, ok)
	waitDone(t, c)
	entries, err := m.CallLog(pc.CallID())
	require.NoError(t, err)
	var texts []string
	for _, e := range entries {
		texts = append(texts, e.Text)
		require.NotContains(t, e.Text, "trunk-secret")
	}
	require.Equal(t, []string{"← INVITE from trunk", "→ 180 Ringing (INVITE)", "→ 200 OK (INVITE)", "← BYE", "call ended: FINISH (200 OK)"}, texts)
}
