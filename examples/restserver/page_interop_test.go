//go:build interop && linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/sip/siptest"
)

// updateScreenshots writes TestInteropOperatorPage's screenshots to
// testdata/screenshots (the README's pictures) instead of a temporary
// directory: go test -tags interop -run OperatorPage -update-screenshots.
var updateScreenshots = flag.Bool("update-screenshots", false, "write the operator page's screenshots to testdata/screenshots")

// page drives the operator's page in Chromium over the DevTools protocol.
type page struct {
	t   *testing.T
	ctx context.Context
}

// evalT evaluates the JavaScript expression js in p's page.
func evalT[T any](p *page, js string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](js))
	require.NoError(p.t, err, "evaluating %s", js)
	return v
}

// num and str evaluate js as a number or a string.
func (p *page) num(js string) float64 { p.t.Helper(); return evalT[float64](p, js) }
func (p *page) str(js string) string  { p.t.Helper(); return evalT[string](p, js) }

// do runs the JavaScript statements js in the page (a click, a value set).
func (p *page) do(js string) {
	p.t.Helper()
	evalT[chromedp.Void](p, "(() => { "+js+"; })()")
}

// wait polls the JavaScript expression js until it is truthy (within
// d) and returns its last value as a string (JSON for non-strings).
func (p *page) wait(what string, d time.Duration, js string) string {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		v, _ := chromedp.Run(p.ctx, chromedp.Evaluate[any](js))
		switch x := v.(type) {
		case string:
			if x != "" {
				return x
			}
		case bool:
			if x {
				return "true"
			}
		case float64:
			if x != 0 {
				return fmt.Sprint(x)
			}
		case nil:
		default:
			return fmt.Sprint(x)
		}
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.getElementById("calls").innerText + "\n--\n" + document.getElementById("detail").innerText`))
			p.t.Fatalf("the page did not show %s within %v (%s is %v); the page shows:\n%s", what, d, js, v, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// login answers every HTTP login prompt of the browser with user and pass,
// as an operator types them when the page first asks (the browser then
// sends them by itself); it returns how many prompts came. Every request
// of the page passes the DevTools Fetch domain, which holds those that
// meet a 401 until they are answered.
func (p *page) login(user, pass string) *atomic.Int32 {
	p.t.Helper()
	var asked atomic.Int32
	paused := chromedp.Events(p.ctx, fetch.RequestPaused)
	auth := chromedp.Events(p.ctx, fetch.AuthRequired)
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(p.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
		}
	}()
	go func() {
		for ev, err := range auth {
			if err != nil {
				return
			}
			asked.Add(1)
			_, _ = chromedp.Call(p.ctx, fetch.ContinueWithAuth, fetch.ContinueWithAuthParams{RequestID: ev.RequestID,
				AuthChallengeResponse: &fetch.AuthChallengeResponse{Response: fetch.AuthChallengeResponseResponseProvideCredentials, Username: user, Password: pass}})
		}
	}()
	handle := true
	_, err := chromedp.Call(p.ctx, fetch.Enable, fetch.EnableParams{HandleAuthRequests: &handle})
	require.NoError(p.t, err)
	return &asked
}

// viewport sets the page's size (mobile: a phone's screen at 2 device
// pixels per CSS pixel).
func (p *page) viewport(w, h int64, mobile bool) {
	p.t.Helper()
	scale := 1.0
	if mobile {
		scale = 2
	}
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(scale)}
	if mobile {
		opts = append(opts, chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	require.NoError(p.t, chromedp.Do(p.ctx, chromedp.EmulateViewport(w, h, opts...)))
	time.Sleep(300 * time.Millisecond) // a layout and the charts' redraw
}

// screenshot saves what the viewport (w x h CSS pixels at scale device
// pixels each) shows as name (PNG) and checks it decodes at that size.
func (p *page) screenshot(dir, name string, w, h, scale int) {
	p.t.Helper()
	buf, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	require.NoError(p.t, err)
	img, err := png.Decode(bytes.NewReader(buf))
	require.NoError(p.t, err)
	require.Equal(p.t, [2]int{w * scale, h * scale}, [2]int{img.Bounds().Dx(), img.Bounds().Dy()})
	require.NoError(p.t, os.WriteFile(filepath.Join(dir, name), buf, 0o644))
	p.t.Logf("screenshot %s: %dx%d, %d bytes", name, img.Bounds().Dx(), img.Bounds().Dy(), len(buf))
}

// openPage opens the page of the server at addr in a new headless Chromium
// (1280x800, at most 90 s) and logs in as the test admin when the browser
// asks; it returns the page and the count of the browser's login prompts.
// The test's cleanup closes the browser.
func openPage(t *testing.T, addr string) (*page, *atomic.Int32) {
	t.Helper()
	chromium := testenv.StartChromium(t, testenv.ChromiumConfig{URL: "about:blank", DevTools: true})
	actx, acancel := remote.NewAllocator(context.Background(), chromium.DevToolsURL(t), remote.NoModifyURL)
	t.Cleanup(acancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, tcancel := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(tcancel)
	p := &page{t: t, ctx: ctx}
	p.viewport(1280, 800, false)
	logins := p.login(testUser, testPass)
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("http://"+addr+"/")))
	return p, logins
}

// Headless Chromium drives the operator's page of the server binary (with
// -record-dir and -sound-dir, behind the admin's login, answered when the
// browser asks) as an operator would: starts a call from the form to a
// test phone (H.264 and a tone), published to nginx-rtmp; opens it and sees
// its live charts move (points added each second, inbound video and audio
// kbps above 0); adds a push to nginx-rtmp and sees it RTMP_STREAM_ACTIVE
// (ffprobe reads the pushed stream), mutes and unmutes it; plays a sound
// from -sound-dir; gets a viewer link; holds and unholds (the page shows
// HOLD then ESTABLISHED, the phone gets both re-INVITEs); sends a DTMF
// digit from the panel's pad (the phone gets it); reads the call's event
// log; records and stops recording, and downloads the recording from the
// recordings panel (ffprobe decodes it: H.264 video) and plays it in the
// page's <video>. On a
// phone's width (375 and 390 px) nothing scrolls sideways and the calls are
// cards. Screenshots at 1280x800 and 390x844 (-update-screenshots writes
// them to testdata/screenshots). Last, a sample crossing every threshold,
// given to the page's stats handler, turns the call's badges and charts
// red, the push removed from the page is gone from nginx, and a transfer
// from the panel reaches the phone as a REFER.
func TestInteropOperatorPage(t *testing.T) {
	testenv.LookPath(t, "chromium")
	ngx := testenv.StartNginxRTMP(t)
	recDir, soundDir := t.TempDir(), t.TempDir()
	wav := testmedia.WAV(testmedia.Tone(1000, 16000, 0, 4000, 0.5), 16000)
	require.NoError(t, os.WriteFile(filepath.Join(soundDir, "beep.wav"), wav, 0o644))
	phone := startPeer(t, siptest.Script{Audio: true, Video: true, SendSR: true})
	srv := startServerProcess(t, "-record-dir", recDir, "-sound-dir", soundDir)
	shots := t.TempDir()
	if *updateScreenshots {
		shots = filepath.Join("testdata", "screenshots")
		require.NoError(t, os.MkdirAll(shots, 0o755))
	}

	p, logins := openPage(t, srv.addr)
	t0 := time.Now()
	step := func(what string) { t.Logf("%5.1fs %s", time.Since(t0).Seconds(), what) }
	p.wait("the sounds of -sound-dir", 10*time.Second, `[...document.querySelectorAll("#soundSelect option")].some((o) => o.value === "beep.wav")`)
	require.Positive(t, logins.Load(), "the server asked the browser for the login")

	// A call from the form; its row, then its panel.
	for id, v := range map[string]string{"callee": phone.URI(), "rtmpUrl": ngx.RTMPURL(), "rtmpStream": "main", "toStream": "show"} {
		p.do(`document.getElementById("` + id + `").value = ` + jsString(v))
	}
	p.do(`document.getElementById("startBtn").click()`)
	callID := p.wait("the call ESTABLISHED", 30*time.Second, `(() => {
		const tr = [...document.querySelectorAll("#calls tr[data-call-id]")].find((tr) => tr.querySelector("td.call-status").textContent === "ESTABLISHED");
		return tr ? tr.dataset.callId : "";
	})()`)
	step("ESTABLISHED " + callID)
	p.do(`document.querySelector('#calls tr[data-call-id="` + callID + `"] td.call-id').click()`)
	p.wait("the call's panel", 5*time.Second, `!document.getElementById("detail").hidden && document.getElementById("detailId").textContent === "`+callID+`"`)

	// The charts move: points every second, kbps above 0.
	points := func(key string) string {
		return `+((document.querySelector('.chart[data-key="` + key + `"] canvas') || {dataset: {}}).dataset.points || 0)`
	}
	value := func(key string) string {
		return `parseFloat((document.querySelector('.chart[data-key="` + key + `"] .chart-value') || {}).textContent) || 0`
	}
	p.wait("3 points of inbound video kbps", 15*time.Second, points("vkbps")+` >= 3`)
	n1 := p.num(points("vkbps"))
	p.wait("more points", 5*time.Second, points("vkbps")+` > `+fmt.Sprint(n1))
	n2 := p.num(points("vkbps"))
	vkbps, akbps := p.num(value("vkbps")), p.num(value("akbps"))
	step(fmt.Sprintf("charts: video %.0f kbps, audio %.1f kbps, %v then %v points", vkbps, akbps, n1, n2))
	require.Greater(t, n2, n1)
	require.Greater(t, vkbps, 0.0, "inbound video kbps")
	require.Greater(t, akbps, 0.0, "inbound audio kbps")
	health := p.str(`document.querySelector('#calls tr[data-call-id="` + callID + `"] td.health').textContent`)
	require.Equal(t, "ok", health, "a clean loopback call crosses no threshold")

	// A push to nginx: RTMP_STREAM_ACTIVE on the page, and nginx has it.
	p.do(`document.getElementById("pushUrl").value = ` + jsString(ngx.RTMPURL()) + `; document.getElementById("pushBtn").click()`)
	p.wait("the push RTMP_STREAM_ACTIVE", 20*time.Second, `[...document.querySelectorAll("#pushes .push-status")].some((e) => e.textContent.startsWith("RTMP_STREAM_ACTIVE"))`)
	step("push RTMP_STREAM_ACTIVE")
	pushed := probeLive(t, ngx.RTMPURL()+"/rtmp_show")
	require.Equal(t, "h264", pushed["video"].CodecName)
	p.wait("the push's output chart", 10*time.Second, `document.querySelectorAll('.chart[data-key^="out-"]').length >= 4`)
	pushButton := func(text string) string {
		return `[...document.querySelectorAll("#pushes li button")].find((b) => b.textContent === "` + text + `").click()`
	}
	p.do(pushButton("Mute"))
	p.wait("the push muted", 10*time.Second, `document.querySelector("#pushes .push-status").textContent.endsWith("(muted)")`)
	p.do(pushButton("Unmute"))
	p.wait("the push unmuted", 10*time.Second, `document.querySelector("#pushes .push-status").textContent === "RTMP_STREAM_ACTIVE"`)

	// A sound from -sound-dir and a viewer link.
	p.do(`document.getElementById("soundSelect").value = "beep.wav"; document.getElementById("soundBtn").click()`)
	p.wait("the sound played", 10*time.Second, `document.getElementById("detailMsg").textContent === "sound beep.wav: done"`)
	p.do(`document.getElementById("viewerBtn").click()`)
	player := p.wait("a viewer link", 10*time.Second, `document.getElementById("viewerLinks").hidden ? "" : document.getElementById("viewerPlayer").value`)
	require.True(t, strings.HasPrefix(player, "http://"+srv.addr+"/"), player)
	pu, err := url.Parse(player)
	require.NoError(t, err)
	require.Contains(t, pu.Query().Get("whep"), "token=", player)
	hls := p.str(`document.getElementById("viewerHls").value`)
	require.True(t, strings.HasPrefix(hls, "http://"+srv.addr+"/"), hls)
	require.Contains(t, hls, "token=")

	// Hold, unhold.
	p.do(`document.getElementById("holdBtn").click()`)
	p.wait("HOLD", 15*time.Second, `document.querySelector('#calls tr[data-call-id="`+callID+`"] td.call-status').textContent === "HOLD"`)
	p.do(`document.getElementById("unholdBtn").click()`)
	p.wait("ESTABLISHED again", 15*time.Second, `document.querySelector('#calls tr[data-call-id="`+callID+`"] td.call-status').textContent === "ESTABLISHED"`)
	step("held and unheld")
	calls := phone.Calls()
	require.Len(t, calls, 1)
	pc := calls[0]
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	reinvites, err := pc.WaitReinvites(wctx, 2)
	require.NoError(t, err, "the phone got the hold and unhold re-INVITEs")
	require.Contains(t, string(reinvites[0].Body), "a=sendonly")

	// A digit from the panel's pad reaches the phone.
	p.do(`[...document.querySelectorAll("#detailDtmf button")].find((b) => b.textContent === "5").click()`)
	digits, err := pc.WaitDTMF(wctx, 1)
	require.NoError(t, err)
	require.Equal(t, "5", digits)

	// The event log tells the call's SIP story.
	p.wait("the INVITE in the event log", 10*time.Second, `document.getElementById("log").textContent.includes("INVITE")`)

	// Record 3 s and download the recording from the recordings panel.
	p.do(`document.getElementById("recordBtn").click()`)
	p.wait("recording on", 10*time.Second, `document.getElementById("recordBtn").dataset.recording === "true"`)
	time.Sleep(3 * time.Second)
	p.do(`document.getElementById("recordBtn").click()`)
	p.wait("recording off", 10*time.Second, `document.getElementById("recordBtn").dataset.recording === "false"`)
	href := p.wait("the recording's download link", 15*time.Second, `(() => {
		const a = document.querySelector('#recs tr[data-call-id="`+callID+`"] a.rec-download');
		return a ? a.href : "";
	})()`)
	step("recorded: " + href)
	require.True(t, strings.HasPrefix(href, "http://"+srv.addr+"/"), href)
	resp, err := http.Get(href)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a recording without the login")
	req, err := http.NewRequest(http.MethodGet, href, nil)
	require.NoError(t, err)
	req.SetBasicAuth(testUser, testPass)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Contains(t, resp.Header.Get("Content-Disposition"), "attachment")
	file := filepath.Join(t.TempDir(), filepath.Base(strings.SplitN(href, "?", 2)[0]))
	require.NoError(t, os.WriteFile(file, body, 0o644))
	recorded := testenv.ProbeStreams(t, file)
	t.Logf("the download: %d bytes, %+v", len(body), recorded)
	require.Equal(t, "h264", recorded["video"].CodecName)
	require.Equal(t, 320, recorded["video"].Width)
	// It plays in the page, seekable (Range requests).
	p.do(`document.querySelector('#recs tr[data-call-id="` + callID + `"] td.rec-act button').click()`)
	p.wait("the recording playing in the page", 10*time.Second, `(() => {
		const v = document.getElementById("recPlayer");
		return !v.hidden && v.videoWidth === 320 && v.duration > 2 && v.seekable.length > 0;
	})()`)

	p.do(`window.scrollTo(0, 0)`)
	p.screenshot(shots, "operator-desktop.png", 1280, 800, 1)
	p.do(`document.getElementById("logTitle").scrollIntoView(); window.scrollBy(0, -120)`)
	p.screenshot(shots, "operator-desktop-log.png", 1280, 800, 1)

	// A phone: nothing wider than the screen, the calls are cards.
	for _, w := range []int64{375, 390} {
		p.viewport(w, 844, true)
		wide := p.num(`document.documentElement.scrollWidth`)
		require.LessOrEqual(t, wide, float64(w), "the page scrolls sideways at %d px", w)
	}
	thead := p.str(`getComputedStyle(document.querySelector("#callsSection thead")).display`)
	require.Equal(t, "none", thead, "the calls are cards on a phone")
	p.do(`document.getElementById("callsSection").scrollIntoView()`)
	p.screenshot(shots, "operator-phone.png", 390, 844, 2)
	step(fmt.Sprintf("phone; the browser asked for the login %d times", logins.Load()))

	// The markers: a sample crossing every threshold (the last real one
	// with a freeze more, 5 % loss, 4 s between keyframes, its first output
	// lost) given to the page's stats handler as an event would: the
	// call's badges and the charts concerned turn red.
	marked := p.str(`(() => {
		const list = stats.get(` + jsString(callID) + `);
		const s = JSON.parse(JSON.stringify(list[list.length - 1].s));
		s.t += 500;
		s.video.freezes += 1; s.video.frozenMs += 400; s.video.lossPct = 5; s.video.keyframeIntervalMs = 4000;
		s.outputs[0].status = "RTMP_CONNECTION_LOST";
		onStats(s);
		const badges = [...document.querySelectorAll('#calls tr[data-call-id="` + callID + `"] td.health .badge')].map((b) => b.textContent);
		const charts = [...document.querySelectorAll(".chart.alert")].map((c) => c.dataset.key);
		return badges.join(",") + " | " + charts.join(",");
	})()`)
	t.Logf("a sample crossing every threshold: %s", marked)
	badges, charts, _ := strings.Cut(marked, " | ")
	require.Equal(t, "freeze,loss 5.0%,keyframes 4.0 s,output lost", badges)
	for _, key := range []string{"vkbps", "fps", "loss", "kfi", "out-"} {
		require.Contains(t, charts, key)
	}
	require.True(t, p.str(`document.getElementById("nodesSection").hidden ? "hidden" : ""`) == "hidden", "no nodes panel on a single server")

	// The push removed from the page: gone from its list and from nginx.
	p.do(pushButton("Remove"))
	p.wait("no push", 10*time.Second, `document.getElementById("pushes").textContent.trim() === "none"`)

	// A blind transfer from the panel: the phone gets the REFER.
	p.do(`document.getElementById("transferTarget").value = "sip:carol@127.0.0.1"; document.getElementById("transferBtn").click()`)
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	refers, err := pc.WaitRefers(rctx, 1)
	require.NoError(t, err, "the phone got a REFER")
	require.Contains(t, refers[0].ReferTo, "sip:carol@127.0.0.1")
	p.wait("the transfer answered", 10*time.Second, `document.getElementById("detailMsg").textContent === "transfer: done"`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		streams, err := ngx.Streams(context.Background())
		require.NoError(t, err)
		if !slices.ContainsFunc(streams, func(s testenv.NginxStream) bool { return s.Name == "rtmp_show" && s.Publishing != nil }) {
			break
		}
		require.True(t, time.Now().Before(deadline), "nginx still has the removed push: %+v", streams)
		time.Sleep(100 * time.Millisecond)
	}
	srv.interrupt(t)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// In a cluster the page shows the Nodes panel (/cluster/nodes): node A's
// page lists A, marked as the one serving it, and B. A single server has
// no panel (TestInteropOperatorPage).
func TestInteropOperatorPageNodes(t *testing.T) {
	testenv.LookPath(t, "chromium")
	nats := testenv.StartNATS(t, testenv.NATSConfig{})
	a := startNode(t, nats, "A")
	b := startNode(t, nats, "B")
	waitNodes(t, 2, a, b)
	p, _ := openPage(t, a.addr)
	nodes := p.wait("both nodes", 20*time.Second, `(() => {
		const rows = [...document.querySelectorAll("#nodes tr")];
		return document.getElementById("nodesSection").hidden || rows.length < 2 ? "" : rows.map((tr) => tr.cells[0].textContent + " " + tr.cells[2].textContent).sort().join(", ");
	})()`)
	require.Equal(t, "A (this one) 0 / 100, B 0 / 100", nodes, "the nodes, their calls and -max-calls")
}
