package wcsapi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sipstream/sipstream/callmgr"
)

// Recordings over REST (issue 19): POST /rest-api/recording/find_all lists
// the recordings of the Manager's RecordDir, /recording/delete {name}
// removes one, /call/record/startup and /call/record/terminate {callId}
// record a live call on demand, and Handler.Recordings serves the files
// (GET /recordings/{name}, Range requests, ?download=1).

// Recording is one recording file (/recording/find_all).
type Recording struct {
	Name   string `json:"name"`
	CallID string `json:"callId"`
	Size   int64  `json:"size"`
	// DurationMs is the recorded span, from the file's callmgr
	// RecordingMeta written when it was finalized (0 while it is recorded
	// or without one).
	DurationMs int64 `json:"durationMs"`
	// Started is when the recording started (unix ms): from its
	// RecordingMeta, else the file's modification time.
	Started int64  `json:"started"`
	Format  string `json:"format"`
	// Recording is true while a live call writes the file.
	Recording bool `json:"recording"`
	// URL is where GET serves it (behind the admin's login).
	URL string `json:"url"`
}

// recordingFormats are the recordings' extensions.
var recordingFormats = map[string]bool{"mp4": true, "mkv": true, "flv": true}

// maxRecordings bounds a listing.
const maxRecordings = 10000

// recordingName checks a recording's file name: a plain name in the folder
// (no path, no hidden file) with a recording's extension.
func recordingName(name string) (format string, ok bool) {
	if name == "" || len(name) > 255 || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") ||
		!filepath.IsLocal(name) {
		return "", false
	}
	ext := strings.TrimPrefix(filepath.Ext(name), ".")
	if !recordingFormats[ext] {
		return "", false
	}
	return ext, true
}

// recordDir is the recordings' folder, or a 400 when recording is off.
func (s *server) recordDir() (string, error) {
	if s.ops == nil || !s.ops.svc.recording || s.ops.m.RecordDir() == "" {
		return "", errStatus(http.StatusBadRequest, "recording is off on this server (start it with -record-dir)")
	}
	return s.ops.m.RecordDir(), nil
}

// activeRecordings are the files live calls write now, by name.
func (s *server) activeRecordings() map[string]bool {
	out := make(map[string]bool)
	for _, ci := range s.ops.m.FindAll() {
		for _, si := range ci.Sinks {
			if si.Kind == callmgr.SinkKindRecord && si.Path != "" && si.Status != callmgr.SinkFailed {
				out[filepath.Base(si.Path)] = true
			}
		}
	}
	return out
}

// listRecordings lists dir's recordings, newest first.
func listRecordings(dir string, active map[string]bool) ([]Recording, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := []Recording{}
	for _, de := range des {
		format, ok := recordingName(de.Name())
		if !ok || !de.Type().IsRegular() {
			continue
		}
		fi, err := de.Info()
		if err != nil {
			continue
		}
		rec := Recording{Name: de.Name(), Size: fi.Size(), Started: fi.ModTime().UnixMilli(), Format: format,
			Recording: active[de.Name()], URL: "/recordings/" + url.PathEscape(de.Name())}
		if meta, err := callmgr.ReadRecordingMeta(filepath.Join(dir, de.Name())); err == nil {
			rec.CallID, rec.DurationMs = meta.CallID, meta.DurationMs
			if meta.Started > 0 {
				rec.Started = meta.Started
			}
		}
		out = append(out, rec)
		if len(out) >= maxRecordings {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Started != out[j].Started {
			return out[i].Started > out[j].Started
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func (s *server) recordingFindAll(w http.ResponseWriter, r *http.Request) error {
	if err := s.decode(w, r, &struct{}{}); err != nil {
		return err
	}
	dir, err := s.recordDir()
	if err != nil {
		return err
	}
	out, err := listRecordings(dir, s.activeRecordings())
	if err != nil {
		s.log.Warn("listing the recordings", "err", err)
		return errStatus(http.StatusInternalServerError, "the recordings folder cannot be read")
	}
	if len(out) == 0 {
		return errStatus(http.StatusNotFound, "no recordings")
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) recordingDelete(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name flexString `json:"name"`
	}
	if err := s.decode(w, r, &req); err != nil {
		return err
	}
	dir, err := s.recordDir()
	if err != nil {
		return err
	}
	name := string(req.Name)
	if _, ok := recordingName(name); !ok {
		return badField("name", "must be the name of a recording (/recording/find_all)")
	}
	if s.activeRecordings()[name] {
		return errStatus(http.StatusConflict, "the recording is running: stop it first (/call/record/terminate)")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return errStatus(http.StatusInternalServerError, "the recordings folder cannot be opened")
	}
	defer root.Close()
	if err := root.Remove(name); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errStatus(http.StatusNotFound, "no such recording")
		}
		return errStatus(http.StatusInternalServerError, "the recording cannot be removed")
	}
	_ = root.Remove(name + callmgr.RecordingMetaSuffix)
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// recordStarted is the answer of /call/record/startup.
type recordStarted struct {
	CallID         string `json:"callId"`
	MediaSessionID string `json:"mediaSessionId"`
	Name           string `json:"name"`
	URL            string `json:"url"`
}

func (s *server) callRecordStartup(w http.ResponseWriter, r *http.Request) error {
	id, err := s.callIDOnly(w, r)
	if err != nil {
		return err
	}
	if _, err := s.recordDir(); err != nil {
		return err
	}
	si, err := s.ops.m.StartRecording(r.Context(), id)
	if err != nil {
		return recordErr(err)
	}
	name := filepath.Base(si.Path)
	writeJSON(w, http.StatusOK, recordStarted{CallID: id, MediaSessionID: si.ID, Name: name, URL: "/recordings/" + url.PathEscape(name)})
	return nil
}

func (s *server) callRecordTerminate(w http.ResponseWriter, r *http.Request) error {
	id, err := s.callIDOnly(w, r)
	if err != nil {
		return err
	}
	if _, err := s.recordDir(); err != nil {
		return err
	}
	// The file is finalized before the answer; a client gone away does not
	// cut that short.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	defer cancel()
	if err := s.ops.m.StopRecording(ctx, id); err != nil {
		return recordErr(err)
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// recordErr maps the recording errors; the rest as mapErr does.
func recordErr(err error) error {
	switch {
	case errors.Is(err, callmgr.ErrRecording):
		return fmt.Errorf("%w: a recording of the call runs already", errConflict)
	case errors.Is(err, callmgr.ErrNotConfigured):
		return errStatus(http.StatusBadRequest, "recording is off on this server (start it with -record-dir)")
	case errors.Is(err, callmgr.ErrSinkNotFound):
		return fmt.Errorf("%w: no recording of the call runs", errNotFound)
	}
	return mapErr(err)
}

// Recordings returns the handler of GET /recordings/{name}, which a service
// mounts at "GET /recordings/": the files of the Manager's RecordDir, with
// Range requests (a <video> element seeks), "Content-Disposition:
// attachment" when ?download=1, behind the guard and the admin's login.
// Names that are not a recording's, or leave the folder, get 404; so does
// everything when recording is off.
func (h *Handler) Recordings() http.Handler {
	serve := h.srv.admin(http.HandlerFunc(h.srv.serveRecording))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(guardedKey{}) != nil {
			serve.ServeHTTP(w, r)
			return
		}
		h.srv.guard(serve).ServeHTTP(w, r)
	})
}

func (s *server) serveRecording(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, errStatus(http.StatusMethodNotAllowed, "use GET"), s.now())
		return
	}
	dir, err := s.recordDir()
	name := strings.TrimPrefix(r.URL.Path, "/recordings/")
	_, ok := recordingName(name)
	if err != nil || !ok {
		writeError(w, r, errStatus(http.StatusNotFound, "no such recording"), s.now())
		return
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		writeError(w, r, errStatus(http.StatusNotFound, "no such recording"), s.now())
		return
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		writeError(w, r, errStatus(http.StatusNotFound, "no such recording"), s.now())
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		writeError(w, r, errStatus(http.StatusNotFound, "no such recording"), s.now())
		return
	}
	if r.URL.Query().Get("download") == "1" {
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	}
	switch filepath.Ext(name) {
	case ".mp4":
		w.Header().Set("Content-Type", "video/mp4")
	case ".mkv":
		w.Header().Set("Content-Type", "video/x-matroska")
	case ".flv":
		w.Header().Set("Content-Type", "video/x-flv")
	}
	http.ServeContent(w, r, name, fi.ModTime(), f)
}
