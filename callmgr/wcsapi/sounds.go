package wcsapi

import (
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Sound is one file of Config.SoundDir (/sound/find_all): what
// /call/inject_sound's fileName and /push/sound_on's soundFile name.
type Sound struct {
	// Name is the file's path inside the sound folder ("/"-separated).
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// soundExts are the extensions of the files sipstream plays.
var soundExts = map[string]bool{".wav": true, ".mp3": true, ".ogg": true, ".opus": true}

// maxSounds bounds a listing (and the folders walked for it).
const maxSounds = 1000

// listSounds lists dir's sound files (subfolders too, hidden ones
// skipped), by name.
func listSounds(dir string) ([]Sound, error) {
	out := []Sound{}
	walked := 0
	err := fs.WalkDir(os.DirFS(dir), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			return nil // an unreadable subfolder: skip it
		}
		walked++
		if walked > 10*maxSounds || len(out) >= maxSounds {
			return fs.SkipAll
		}
		if p != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !soundExts[strings.ToLower(filepath.Ext(p))] {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		out = append(out, Sound{Name: p, Size: fi.Size()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *server) soundFindAll(w http.ResponseWriter, r *http.Request) error {
	if err := s.decode(w, r, &struct{}{}); err != nil {
		return err
	}
	if s.ops == nil || s.ops.svc.soundDir == "" {
		return errStatus(http.StatusBadRequest, "sound files are off on this server (start it with -sound-dir)")
	}
	out, err := listSounds(s.ops.svc.soundDir)
	if err != nil {
		s.log.Warn("listing the sounds", "err", err)
		return errStatus(http.StatusInternalServerError, "the sound folder cannot be read")
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// operatorRoutes are the endpoints of the operator's page (issue 19):
// statistics, logs, recordings, sounds.
func (s *server) operatorRoutes() map[string]func(http.ResponseWriter, *http.Request) error {
	return map[string]func(http.ResponseWriter, *http.Request) error{
		"/call/stats":            s.callStats,
		"/call/log":              s.callLog,
		"/call/record/startup":   s.callRecordStartup,
		"/call/record/terminate": s.callRecordTerminate,
		"/recording/find_all":    s.recordingFindAll,
		"/recording/delete":      s.recordingDelete,
		"/sound/find_all":        s.soundFindAll,
	}
}
