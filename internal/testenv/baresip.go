package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BaresipConfig describes the softphone StartBaresip runs.
type BaresipConfig struct {
	// User is the account's user name (required), registered at
	// Registrar.
	User string
	// Password is the digest password. Empty means none.
	Password string
	// Registrar is "host:port" of the registrar and proxy the account
	// registers with and calls through (a Kamailio's Addr). Required.
	Registrar string
	// ToneHz is the frequency of the audio (baresip's ausine source).
	// Zero means 440 Hz.
	ToneHz int
	// AudioFile, when set, is a WAV file baresip's aufile source plays
	// instead of the ausine tone (MarkerFiles.Audio, say). It is not
	// looped: make it longer than the call.
	AudioFile string
	// VideoFile, when set, is a media file baresip's avformat source
	// plays (decoded, then encoded by avcodec) instead of fakevideo's
	// moving line, whose frames are too simple to be realistic (about one
	// packet each at 640x360). (baresip 1.0's avformat source cannot
	// serve audio and video from one file: the call hangs.)
	VideoFile string
	// Video sends H.264 (baresip's avcodec with libx264, its normal
	// GOP: a keyframe every 10 s unless asked for one) from baresip's
	// fakevideo source.
	Video bool
	// Width and Height are the video size. Zero means 640x360.
	Width, Height int
	// FPS is the frame rate. Zero means 25.
	FPS int
	// Bitrate is the video bit rate in bit/s. Zero means 800000.
	Bitrate int
	// MediaEnc is the account's media encryption (baresip's mediaenc
	// parameter): "srtp" (SDES-SRTP offered and accepted, plain RTP
	// too), "srtp-mand" (SDES-SRTP only: a plain RTP offer is refused).
	// Empty means plain RTP only.
	MediaEnc string
	// Control loads baresip's ctrl_tcp module on a free loopback port,
	// so that the test can drive it: Baresip.Dial places a call (through
	// Registrar), Baresip.Command sends any menu command. The zero value
	// leaves it out (baresip only answers).
	Control bool
}

// Baresip is a real softphone (baresip 1.0) registered at a registrar. It
// answers every incoming call at once and sends a sine tone (or
// AudioFile) in G.711 and, with Video, H.264 at 640x360 25 fps by default
// from fakevideo (or VideoFile). It answers RTCP PLI and
// FIR with a keyframe and offers "nack" and "nack pli" feedback.
type Baresip struct {
	// SIPPort is where it listens for SIP (UDP, 127.0.0.1).
	SIPPort int
	// AOR is its address of record, "sip:user@registrar".
	AOR string
	// ControlPort is ctrl_tcp's TCP port on 127.0.0.1 (BaresipConfig.Control), else 0.
	ControlPort int
	out         *SyncBuffer
}

// Output returns what baresip printed so far.
func (b *Baresip) Output() string { return b.out.String() }

var baresipRegistered = regexp.MustCompile(`200 OK.*\[\d+ binding`)

// StartBaresip starts baresip with cfg, waits until its REGISTER was
// accepted and kills its process group when the test ends (printing its
// output if the test failed, or always when BARESIP_LOG is set). It fails
// under CI (and skips elsewhere) when baresip is missing.
func StartBaresip(t testing.TB, cfg BaresipConfig) *Baresip {
	t.Helper()
	if cfg.User == "" || cfg.Registrar == "" {
		t.Fatal("testenv: BaresipConfig needs User and Registrar")
	}
	bin := LookPath(t, "baresip")
	modules := "/usr/lib/baresip/modules"
	if _, err := os.Stat(filepath.Join(modules, "g711.so")); err != nil {
		t.Fatalf("baresip modules not found in %s: %v", modules, err)
	}
	if cfg.ToneHz == 0 {
		cfg.ToneHz = 440
	}
	if cfg.Width == 0 || cfg.Height == 0 {
		cfg.Width, cfg.Height = 640, 360
	}
	if cfg.FPS == 0 {
		cfg.FPS = 25
	}
	if cfg.Bitrate == 0 {
		cfg.Bitrate = 800000
	}
	dir := t.TempDir()
	b := &Baresip{SIPPort: FreePort(t, "udp"), AOR: "sip:" + cfg.User + "@" + cfg.Registrar, out: &SyncBuffer{}}
	var c strings.Builder
	line := func(k, v string) { fmt.Fprintf(&c, "%s\t%s\n", k, v) }
	line("sip_listen", "127.0.0.1:"+strconv.Itoa(b.SIPPort))
	line("sip_transports", "udp")
	line("call_max_calls", "4")
	if cfg.AudioFile != "" {
		line("audio_source", "aufile,"+cfg.AudioFile)
	} else {
		line("audio_source", "ausine,"+strconv.Itoa(cfg.ToneHz))
	}
	line("audio_player", "aufile,"+filepath.Join(dir, "played.wav"))
	line("audio_alert", "aufile,"+filepath.Join(dir, "alert.wav"))
	line("ausrc_srate", "48000")
	line("ausrc_channels", "2")
	line("rtcp_mux", "no")
	line("module_path", modules)
	for _, m := range []string{"g711", "ausine", "aufile"} {
		line("module", m+".so")
	}
	if cfg.MediaEnc != "" {
		line("module", "srtp.so")
	}
	if cfg.VideoFile != "" {
		line("module", "avformat.so")
	}
	if cfg.Video {
		if cfg.VideoFile != "" {
			line("video_source", "avformat,"+cfg.VideoFile)
		} else {
			line("video_source", "fakevideo,nil")
		}
		line("video_display", "fakevideo,nil")
		line("video_size", fmt.Sprintf("%dx%d", cfg.Width, cfg.Height))
		line("video_bitrate", strconv.Itoa(cfg.Bitrate))
		line("video_fps", strconv.Itoa(cfg.FPS)+".00")
		line("avcodec_h264enc", "libx264")
		line("avcodec_h264dec", "h264")
		line("module", "avcodec.so")
		line("module", "fakevideo.so")
	}
	if cfg.Control {
		b.ControlPort = FreePort(t, "tcp")
		line("module", "ctrl_tcp.so")
		line("ctrl_tcp_listen", "127.0.0.1:"+strconv.Itoa(b.ControlPort))
	}
	line("module_app", "account.so")
	line("module_app", "menu.so")
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(c.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	account := "<" + b.AOR + ">;regint=300;answermode=auto;audio_codecs=PCMA,PCMU"
	if cfg.Password != "" {
		account += ";auth_user=" + cfg.User + ";auth_pass=" + cfg.Password
	}
	if cfg.MediaEnc != "" {
		account += ";mediaenc=" + cfg.MediaEnc
	}
	// No video_codecs: with it baresip 1.0 answers video with port 0 (it
	// filters its codec list by name and finds no H.264 match).
	for name, content := range map[string]string{"accounts": account + "\n", "contacts": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"-4", "-n", "127.0.0.1", "-v", "-f", dir}
	// baresip prints with stdio: line-buffer it (a pipe is otherwise
	// block-buffered and the log comes too late to wait on or to show).
	if sb, err := exec.LookPath("stdbuf"); err == nil {
		args = append([]string{"-oL", "-eL", bin}, args...)
		bin = sb
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = b.out, b.out
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("BARESIP_LOG") != "" {
			t.Logf("baresip output:\n%s", tail(b.Output(), 32<<10))
		}
	})
	p := StartProcess(t, cmd)
	for deadline := time.Now().Add(15 * time.Second); !baresipRegistered.MatchString(b.Output()); time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.Done():
			t.Fatalf("baresip exited before registering:\n%s", b.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip did not register at %s within 15 s:\n%s", cfg.Registrar, b.Output())
		}
	}
	return b
}
