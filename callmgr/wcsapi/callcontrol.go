package wcsapi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/media/sound"
)

// Call control and sound over REST. The product documents
// /call/inject_sound {callId, fileName}, /call/inject_stream/startup
// {callId, streamName}, /call/inject_stream/terminate {callId} and
// /push/sound_on {mediaSessionId, soundFile, loop}, /push/sound_off
// {mediaSessionId} (WCS-API.md 4.1, 4.2). Hold, unhold and transfer are
// Web SDK calls in the product (call.hold(), call.unhold(),
// call.transfer(target)), not REST methods: sipstream names them
// /call/hold, /call/unhold and /call/transfer {callId, target} after them.
// /call/inject_sound/terminate and "loop" on inject_sound are sipstream's.
// inject_stream's streamName is a live call's toStream or, with
// Config.WHIP, a browser's WebRTC publication (whip.go).

// callControlRoutes are the endpoints of this file.
func (s *server) callControlRoutes() map[string]func(http.ResponseWriter, *http.Request) error {
	return map[string]func(http.ResponseWriter, *http.Request) error{
		"/call/hold":                    func(w http.ResponseWriter, r *http.Request) error { return s.callHold(w, r, true) },
		"/call/unhold":                  func(w http.ResponseWriter, r *http.Request) error { return s.callHold(w, r, false) },
		"/call/transfer":                s.callTransfer,
		"/call/inject_sound":            s.callInjectSound,
		"/call/inject_sound/terminate":  s.callInjectSoundStop,
		"/call/inject_stream":           s.callInjectStream, // the older docs' name
		"/call/inject_stream/startup":   s.callInjectStream,
		"/call/inject_stream/terminate": s.callInjectStreamStop,
		"/push/sound_on":                s.pushSoundOn,
		"/push/sound_off":               s.pushSoundOff,
	}
}

func (s *server) callHold(w http.ResponseWriter, r *http.Request, on bool) error {
	id, err := s.callIDOnly(w, r)
	if err != nil {
		return err
	}
	if err := s.calls.Hold(r.Context(), id, on); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *server) callTransfer(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		CallID   flexString `json:"callId"`
		Target   flexString `json:"target"`
		Replaces flexString `json:"replacesCallId"`
	}
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	var errs []error
	if req.CallID == "" {
		errs = append(errs, badField("callId", "is required"))
	}
	target := strings.TrimSpace(string(req.Target))
	if target == "" && req.Replaces == "" {
		errs = append(errs, badField("target", "is required (a SIP URI or a number), unless replacesCallId names the call to join"))
	} else if len(target) > 512 || strings.ContainsAny(target, "\x00\r\n<>\"") {
		errs = append(errs, badField("target", "must be a SIP URI or a user/number, at most 512 bytes, without <, >, quotes or control characters"))
	} else if target != "" && !s.calleeAllowed(target) {
		errs = append(errs, badField("target", "not allowed on this server (-allow-callees)"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := s.calls.Transfer(r.Context(), string(req.CallID), target, string(req.Replaces)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *server) callInjectSound(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		CallID   flexString `json:"callId"`
		FileName flexString `json:"fileName"`
		Loop     flexBool   `json:"loop"`
	}
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	var errs []error
	if req.CallID == "" {
		errs = append(errs, badField("callId", "is required"))
	}
	if req.FileName == "" {
		errs = append(errs, badField("fileName", "is required"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := s.calls.InjectSound(r.Context(), string(req.CallID), string(req.FileName), req.Loop.Value); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *server) callInjectSoundStop(w http.ResponseWriter, r *http.Request) error {
	id, err := s.callIDOnly(w, r)
	if err != nil {
		return err
	}
	if err := s.calls.InjectSound(r.Context(), id, "", false); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *server) callInjectStream(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		CallID     flexString `json:"callId"`
		StreamName flexString `json:"streamName"`
	}
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	var errs []error
	if req.CallID == "" {
		errs = append(errs, badField("callId", "is required"))
	}
	if req.StreamName == "" {
		errs = append(errs, badField("streamName", "is required"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := s.calls.InjectStream(r.Context(), string(req.CallID), string(req.StreamName)); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *server) callInjectStreamStop(w http.ResponseWriter, r *http.Request) error {
	id, err := s.callIDOnly(w, r)
	if err != nil {
		return err
	}
	if err := s.calls.InjectStream(r.Context(), id, ""); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *server) pushSoundOn(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		MediaSessionID flexString `json:"mediaSessionId"`
		SoundFile      flexString `json:"soundFile"`
		Loop           flexBool   `json:"loop"`
	}
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	var errs []error
	if req.MediaSessionID == "" {
		errs = append(errs, badField("mediaSessionId", "is required"))
	}
	if req.SoundFile == "" {
		errs = append(errs, badField("soundFile", "is required"))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := s.calls.PushSound(r.Context(), string(req.MediaSessionID), string(req.SoundFile), req.Loop.Value); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *server) pushSoundOff(w http.ResponseWriter, r *http.Request) error {
	id, err := s.mediaSessionID(w, r)
	if err != nil {
		return err
	}
	if err := s.calls.PushSound(r.Context(), id, "", false); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// callIDOnly decodes a body whose only field is callId (required).
func (s *server) callIDOnly(w http.ResponseWriter, r *http.Request) (string, error) {
	var req struct {
		CallID flexString `json:"callId"`
	}
	if err := s.decode(w, r, &req); err != nil {
		return "", err
	}
	if req.CallID == "" {
		return "", badField("callId", "is required")
	}
	return string(req.CallID), nil
}

// --- the Manager side ---

// clipCache keeps decoded sound files, shared by every call that plays
// them (a Clip is immutable): music on hold played into a hundred calls is
// decoded once. A file changed on disk is decoded again. It holds at most
// clipCacheSamples samples; the least recently used files go first.
type clipCache struct {
	mu      sync.Mutex
	entries map[string]*clipEntry
	samples int
	tick    uint64
}

type clipEntry struct {
	clip    *sound.Clip
	mod     time.Time
	size    int64
	lastUse uint64
}

// clipCacheSamples bounds the cache: 64 MiB of 16-bit samples.
const clipCacheSamples = 32 << 20

func (c *clipCache) load(path string) (*sound.Clip, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: %w", path, sound.ErrUnsupportedFormat)
	}
	c.mu.Lock()
	c.tick++
	if e := c.entries[path]; e != nil && e.mod.Equal(st.ModTime()) && e.size == st.Size() {
		e.lastUse = c.tick
		c.mu.Unlock()
		return e.clip, nil
	}
	c.mu.Unlock()
	clip, err := sound.Load(path)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]*clipEntry{}
	}
	if old := c.entries[path]; old != nil {
		c.samples -= len(old.clip.Samples)
		delete(c.entries, path)
	}
	n := len(clip.Samples)
	for c.samples+n > clipCacheSamples && len(c.entries) > 0 {
		var lru string
		for p, e := range c.entries {
			if lru == "" || e.lastUse < c.entries[lru].lastUse {
				lru = p
			}
		}
		c.samples -= len(c.entries[lru].clip.Samples)
		delete(c.entries, lru)
	}
	if n <= clipCacheSamples {
		c.entries[path] = &clipEntry{clip: clip, mod: st.ModTime(), size: st.Size(), lastUse: c.tick}
		c.samples += n
	}
	return clip, nil
}

func (s *managerService) Hold(ctx context.Context, callID string, on bool) error {
	if on {
		return mapErr(s.m.Hold(ctx, callID))
	}
	return mapErr(s.m.Unhold(ctx, callID))
}

func (s *managerService) Transfer(ctx context.Context, callID, target, replaces string) error {
	return mapErr(s.m.Transfer(ctx, callID, target, replaces))
}

// openSound loads a sound file from Config.SoundDir: 400 without a sound
// folder or for a name that leaves it, 404 when the file is not there, 400
// when it is not a sound sipstream decodes.
func (s *managerService) openSound(field, name string, loop bool) (sound.Source, error) {
	if s.soundDir == "" {
		return nil, badField(field, "sound files are off on this server (start it with -sound-dir)")
	}
	if !filepath.IsLocal(name) || strings.ContainsAny(name, "\x00\\") {
		return nil, badField(field, "must be a file name inside the server's sound folder")
	}
	clip, err := s.sounds.load(filepath.Join(s.soundDir, name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("sound file %q: %w", name, errNotFound)
	case errors.Is(err, os.ErrPermission):
		return nil, badField(field, "the file cannot be read")
	case err != nil:
		return nil, badField(field, "not a sound file sipstream can play (WAV, MP3, Ogg Opus): %v", err)
	}
	return clip.Play(clip.SampleRate, loop), nil
}

func (s *managerService) InjectSound(ctx context.Context, callID, fileName string, loop bool) error {
	if _, ok := s.m.Call(callID); !ok {
		return fmt.Errorf("call %q: %w", callID, errNotFound)
	}
	var src sound.Source
	if fileName != "" {
		var err error
		if src, err = s.openSound("fileName", fileName, loop); err != nil {
			return err
		}
	}
	return mapErr(s.m.InjectSound(ctx, callID, src, fileName))
}

func (s *managerService) InjectStream(ctx context.Context, callID, streamName string) error {
	err := s.m.InjectStream(ctx, callID, streamName)
	if errors.Is(err, callmgr.ErrStreamNotFound) {
		return fmt.Errorf("%w: %v", errNotFound, err)
	}
	return mapErr(err)
}

func (s *managerService) PushSound(ctx context.Context, id, soundFile string, loop bool) error {
	if err := s.checkPush(id); err != nil {
		return err
	}
	var src sound.Source
	if soundFile != "" {
		var err error
		if src, err = s.openSound("soundFile", soundFile, loop); err != nil {
			return err
		}
	}
	return mapErr(s.m.SetSinkSound(ctx, id, src, soundFile))
}

// transferEvent makes se the product's TransferStatusEvent: status TRYING
// while the peer reports 1xx, ESTABLISHED when the target answered, FAILED
// otherwise; sipStatus is the code the peer reported (the NOTIFY's
// sipfrag), info the target and the reason.
func transferEvent(se *StatusEvent, t callmgr.TransferInfo) {
	se.Type = "TransferStatusEvent"
	se.SIPStatus = t.Code
	switch {
	case t.Succeeded():
		se.Status = "ESTABLISHED"
	case t.Done:
		se.Status = "FAILED"
	default:
		se.Status = "TRYING"
	}
	se.Info = "transfer to " + t.Target
	if t.Reason != "" {
		se.Info += ": " + t.Reason
	}
}

// injectInfo says what the call's peer hears besides silence.
func injectInfo(ci callmgr.CallInfo) string {
	var parts []string
	if ci.InjectedSound != "" {
		parts = append(parts, "sound "+ci.InjectedSound)
	}
	if ci.InjectedStream != "" {
		parts = append(parts, "stream "+ci.InjectedStream)
	}
	if len(parts) == 0 {
		return "silence"
	}
	return strings.Join(parts, ", ")
}
