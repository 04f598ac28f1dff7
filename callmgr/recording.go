package callmgr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink"
)

// ErrRecording: the call is being recorded already (StartRecording).
var ErrRecording = errors.New("callmgr: a recording of the call is running already")

// RecordingMeta is what the Manager writes next to each recording when it
// is finalized, as JSON in the file named like the recording plus
// RecordingMetaSuffix: which call it is, when it started and how long it
// is.
type RecordingMeta struct {
	CallID   string `json:"callId"`
	ToStream string `json:"toStream,omitempty"`
	// Started is when the recording was started (unix ms).
	Started int64 `json:"started"`
	// DurationMs is the span of the recorded frames' PTS.
	DurationMs int64 `json:"durationMs"`
	// Format is the recording's format: mp4, mkv or flv.
	Format string `json:"format"`
}

// RecordingMetaSuffix is the suffix of a recording's RecordingMeta file
// ("c1-20261208T010203.000Z.mp4" has "c1-20261208T010203.000Z.mp4.json").
const RecordingMetaSuffix = ".json"

// ReadRecordingMeta reads the RecordingMeta file of the recording at path.
func ReadRecordingMeta(path string) (RecordingMeta, error) {
	b, err := os.ReadFile(path + RecordingMetaSuffix)
	if err != nil {
		return RecordingMeta{}, err
	}
	return parseRecordingMeta(b)
}

// maxRecordingMeta bounds a RecordingMeta file.
const maxRecordingMeta = 4096

// parseRecordingMeta decodes a RecordingMeta file: a JSON object of at
// most maxRecordingMeta bytes, without negative times.
func parseRecordingMeta(b []byte) (RecordingMeta, error) {
	var m RecordingMeta
	if len(b) > maxRecordingMeta {
		return RecordingMeta{}, errors.New("callmgr: recording meta file too large")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return RecordingMeta{}, fmt.Errorf("callmgr: recording meta: %w", err)
	}
	if m.Started < 0 || m.DurationMs < 0 {
		return RecordingMeta{}, errors.New("callmgr: recording meta: negative time")
	}
	return m, nil
}

// RecordDir is the folder recordings are written to (Config.RecordDir; ""
// when recording is off).
func (m *Manager) RecordDir() string { return m.cfg.RecordDir }

// recordFile wraps a recorder: it follows the span of the frames' PTS and
// writes the RecordingMeta file once the recording is closed.
type recordFile struct {
	sink.Sink
	path       string
	meta       RecordingMeta
	first, end atomic.Int64 // PTS (ns); first valid when any
	any        atomic.Bool
}

func (r *recordFile) WriteFrame(f *media.Frame) error {
	if !r.any.Load() {
		r.first.Store(int64(f.PTS))
		r.any.Store(true)
	}
	if int64(f.PTS) > r.end.Load() {
		r.end.Store(int64(f.PTS))
	}
	return r.Sink.WriteFrame(f)
}

func (r *recordFile) Close(ctx context.Context) error {
	err := r.Sink.Close(ctx)
	meta := r.meta
	if r.any.Load() {
		meta.DurationMs = time.Duration(r.end.Load() - r.first.Load()).Milliseconds()
	}
	b, _ := json.Marshal(meta)
	if werr := os.WriteFile(r.path+RecordingMetaSuffix, b, 0o644); werr != nil && err == nil {
		err = fmt.Errorf("callmgr: recording meta: %w", werr)
	}
	return err
}

// newRecorder starts the recording at path; run loop only (it reads the
// negotiated streams).
func (c *Call) newRecorder(path string) (sink.Sink, error) {
	audio, video := c.receives()
	s, err := c.m.be.sinks.NewRecorder(path, c.m.cfg.RecordFormat, audio, video, c.m.cfg.RecordQuota)
	if err != nil {
		return nil, err
	}
	return &recordFile{Sink: s, path: path, meta: RecordingMeta{
		CallID: c.id, ToStream: c.p.ToStream, Started: time.Now().UnixMilli(), Format: c.m.cfg.RecordFormat,
	}}, nil
}

// StartRecording starts recording the answered call now, into a new file
// of Config.RecordDir (named as CallParams.Record's are), and returns its
// sink (ID CallID+"/record", Path the file). ErrNotConfigured without
// Config.RecordDir, ErrRecording when a recording of the call runs
// already, ErrNotEstablished before the answer, ErrCallEnded.
func (c *Call) StartRecording(ctx context.Context) (SinkInfo, error) {
	if c.m.cfg.RecordDir == "" {
		return SinkInfo{}, fmt.Errorf("%w: no RecordDir", ErrNotConfigured)
	}
	id := c.recordSinkID()
	var out SinkInfo
	err := c.do(ctx, func() error {
		switch {
		case c.ending:
			return ErrCallEnded
		case c.specs == nil:
			return ErrNotEstablished
		case c.sinks[id] != nil:
			return ErrRecording
		}
		if err := c.m.reserveSinkID(id, c); err != nil && !c.m.ownsSinkID(id, c) {
			return err
		}
		si := SinkInfo{ID: id, CallID: c.id, ToStream: c.p.ToStream, Kind: SinkKindRecord, Status: SinkWait,
			Path: filepath.Join(c.m.cfg.RecordDir, recordName(c.p.ToStream, time.Now(), c.m.cfg.RecordFormat))}
		s, err := c.newRecorder(si.Path)
		if err != nil {
			c.m.releaseSinkID(id, c)
			return fmt.Errorf("callmgr: recording: %w", err)
		}
		if out, err = c.attach(si, s); err != nil {
			c.m.releaseSinkID(id, c)
			return err
		}
		c.mu.Lock()
		c.info.RecordPath = si.Path
		c.mu.Unlock()
		c.emitStatus()
		return nil
	})
	return out, err
}

// StopRecording finalizes the call's recording (CallParams.Record's or
// StartRecording's) and returns once its file is complete and playable
// (or ctx is done: the file is then finished in the background).
// ErrSinkNotFound when none runs.
func (c *Call) StopRecording(ctx context.Context) error {
	id := c.recordSinkID()
	var e *sinkEntry
	err := c.do(ctx, func() error {
		e = c.sinks[id]
		if e == nil {
			return fmt.Errorf("%w: no recording runs", ErrSinkNotFound)
		}
		if c.ending {
			return ErrCallEnded
		}
		delete(c.sinks, id)
		c.m.releaseSinkID(id, c)
		c.syncSinkInfo()
		c.emitSink(e.info, true)
		c.logf(LogOutput, LogInfo, "recording %s stopped: %s", id, filepath.Base(e.info.Path))
		if e.s != nil {
			c.ops.Add(1) // teardown waits for the file
		}
		return nil
	})
	if err != nil || e.s == nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		defer c.ops.Done()
		defer close(done)
		cctx, cancel := context.WithTimeout(context.Background(), c.m.cfg.TeardownTimeout)
		defer cancel()
		c.fan.Remove(cctx, id)
		if err := e.s.Close(cctx); err != nil {
			c.m.cfg.Logger.Info("recording close", "callID", c.id, "err", err)
		}
		c.op.dropGuard(id, e.s)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Recording reports whether a recording of the call runs.
func (ci *CallInfo) Recording() bool {
	for _, s := range ci.Sinks {
		if s.Kind == SinkKindRecord && s.Status != SinkFailed {
			return true
		}
	}
	return false
}

// StartRecording starts recording a live call (see Call.StartRecording).
func (m *Manager) StartRecording(ctx context.Context, callID string) (SinkInfo, error) {
	c, err := m.call(callID)
	if err != nil {
		return SinkInfo{}, err
	}
	return c.StartRecording(ctx)
}

// StopRecording finalizes a live call's recording (see
// Call.StopRecording).
func (m *Manager) StopRecording(ctx context.Context, callID string) error {
	c, err := m.call(callID)
	if err != nil {
		return err
	}
	return c.StopRecording(ctx)
}

// ownsSinkID reports whether c holds the sink ID id.
func (m *Manager) ownsSinkID(id string, c *Call) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sinkIDs[id] == c
}
