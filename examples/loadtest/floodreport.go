package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// floodReport is what -flood found during one round: the answers, and
// what it did to the live calls and to the gateway.
type floodReport struct {
	Invites int     `json:"invites"`
	Rate    float64 `json:"rate"` // asked (0: as fast as one goroutine sends)
	// Result is the flooder's view: answers by status, duration.
	Result *floodResult `json:"result,omitempty"`
	// Gateway is the gateway's own count of incoming INVITEs by result
	// during the flood (in-process: callmgr's IncomingCounts; nil when
	// unknown).
	Gateway map[string]uint64 `json:"gateway,omitempty"`
	// Before and During are the live calls' continuity for -flood-before
	// before the flood and while it ran (the embedded receiver's figures).
	Before *phaseStats `json:"before,omitempty"`
	During *phaseStats `json:"during,omitempty"`
	// The gateway before the flood and -settle after its end (the live
	// calls still up): goroutines (-1 unknown), open fds (-1 unknown),
	// RSS, live heap (in-process).
	GoroutinesBefore int     `json:"goroutines_before"`
	GoroutinesAfter  int     `json:"goroutines_after"`
	FDsBefore        int     `json:"fds_before"`
	FDsAfter         int     `json:"fds_after"`
	RSSBeforeMB      float64 `json:"rss_before_mb"`
	RSSAfterMB       float64 `json:"rss_after_mb"`
	HeapBeforeMB     float64 `json:"heap_before_mb,omitempty"`
	HeapAfterMB      float64 `json:"heap_after_mb,omitempty"`
	SettleS          float64 `json:"settle_s"`
	// GatewayStallMs is, in-process, the longest a goroutine of the
	// gateway's process waiting on a 10 ms ticker was late during the
	// flood: the scheduling delay every goroutine of the gateway (its
	// media too) saw at worst. Omitted with -rest.
	GatewayStallMs float64 `json:"gateway_stall_ms,omitempty"`
	// Harmed is true when the live calls fared worse during the flood:
	// a stream stalled (a gap over maxFloodGap), lost pictures it did not
	// lose before, or got under 90% of its pictures.
	Harmed   bool     `json:"harmed"`
	Problems []string `json:"problems,omitempty"`
}

// maxFloodGap is the longest gap between two pictures (or audio frames)
// of a live call that the flood may cause and still count as harmless.
const maxFloodGap = 500 * time.Millisecond

// floodRound runs the flood against the gateway while the round's calls
// (live of them) are up.
func (t *tester) floodRound(live int) *floodReport {
	f := &floodReport{Invites: t.opt.flood, Rate: t.opt.floodRate, SettleS: t.opt.settle.Seconds()}
	f.GoroutinesBefore, f.FDsBefore = t.gw.goroutines(), t.gw.fds()
	if rss, err := t.gw.rss(); err == nil {
		f.RSSBeforeMB = float64(rss) / mb
	}
	f.HeapBeforeMB = float64(t.gw.heap()) / mb
	counts0 := t.gw.incoming()
	embedded := t.opt.rtmp == ""
	if embedded {
		if _, err := t.child.do(command{Cmd: "phase"}); err != nil {
			f.problem("receiver: %v", err)
		}
		time.Sleep(t.opt.floodBefore)
		if rep, err := t.child.do(command{Cmd: "phase"}); err != nil {
			f.problem("receiver: %v", err)
		} else {
			f.Before = rep.Phase
		}
	}
	t.logf("flood: %d INVITEs to %s during %d live calls", t.opt.flood, t.gw.sipAddr(), live)
	var stall func() time.Duration
	if t.opt.rest == "" {
		stall = watchStalls(10 * time.Millisecond)
	}
	rep, err := t.flooder.do(command{Cmd: "flood", Flood: &floodSpec{Target: t.gw.sipAddr(), Count: t.opt.flood, Rate: t.opt.floodRate,
		Sources: t.opt.floodSources, Wait: t.opt.floodWait, NoAck: t.opt.floodNoAck}})
	if err != nil {
		f.problem("flooder: %v", err)
	} else {
		f.Result = rep.Flood
	}
	if stall != nil {
		f.GatewayStallMs = float64(stall()) / 1e6
	}
	if embedded {
		if rep, err := t.child.do(command{Cmd: "phase"}); err != nil {
			f.problem("receiver: %v", err)
		} else {
			f.During = rep.Phase
		}
	}
	if counts1 := t.gw.incoming(); counts1 != nil && counts0 != nil {
		f.Gateway = map[string]uint64{}
		for k, v := range counts1 {
			if d := v - counts0[k]; d > 0 {
				f.Gateway[k] = d
			}
		}
	}
	time.Sleep(t.opt.settle) // sipgo's transactions of the flood end (up to 32 s)
	f.GoroutinesAfter, f.FDsAfter = t.gw.goroutines(), t.gw.fds()
	if rss, err := t.gw.rss(); err == nil {
		f.RSSAfterMB = float64(rss) / mb
	}
	f.HeapAfterMB = float64(t.gw.heap()) / mb
	f.judge(live)
	return f
}

// watchStalls starts a goroutine that sleeps period after period and
// returns the function that stops it and tells how much longer than
// period one of its sleeps took at worst (timer and scheduling delay).
func watchStalls(period time.Duration) func() time.Duration {
	stop := make(chan struct{})
	worst := make(chan time.Duration)
	go func() {
		var w time.Duration
		for {
			t0 := time.Now()
			select {
			case <-stop:
				worst <- w
				return
			case <-time.After(period):
				w = max(w, time.Since(t0)-period)
			}
		}
	}()
	return func() time.Duration {
		close(stop)
		return <-worst
	}
}

func (f *floodReport) problem(format string, args ...any) {
	f.Problems = append(f.Problems, fmt.Sprintf(format, args...))
}

// judge notes what went wrong: a flood INVITE answered 2xx, the live
// calls harmed.
func (f *floodReport) judge(live int) {
	if r := f.Result; r != nil {
		for code, n := range r.ByStatus {
			if strings.HasPrefix(code, "2") {
				f.problem("%d flood INVITEs answered %s", n, code)
			}
		}
		// Unanswered INVITEs are reported (Result.Unanswered), not a
		// problem: a gateway may drop a flood it cannot keep up with.
	}
	if f.Gateway != nil && f.Gateway["answered"] > 0 {
		f.problem("the gateway counts %d incoming calls answered during the flood", f.Gateway["answered"])
	}
	b, d := f.Before, f.During
	if d == nil {
		return
	}
	switch {
	case d.Streams < live:
		f.Harmed = true
		f.problem("%d streams during the flood, %d calls live", d.Streams, live)
	case d.MaxVideoGapMs > float64(maxFloodGap.Milliseconds()) || d.MaxAudioGapMs > float64(maxFloodGap.Milliseconds()):
		f.Harmed = true
		f.problem("a live stream stalled during the flood: video gap %.0f ms, audio gap %.0f ms", d.MaxVideoGapMs, d.MaxAudioGapMs)
	case d.DurationS > 0.5 && d.MinVideoFPS < 0.9*clipFPS:
		f.Harmed = true
		f.problem("a live stream got %.1f pictures/s during the flood", d.MinVideoFPS)
	case b != nil && d.SkippedFrames > 0 && float64(d.SkippedFrames)/d.DurationS > 2*float64(b.SkippedFrames)/max(b.DurationS, 0.001):
		f.Harmed = true
		f.problem("live streams lost %d pictures during the flood (%d before)", d.SkippedFrames, b.SkippedFrames)
	}
}

// line is the flood's one-line summary.
func (f *floodReport) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "flood %d INVITEs", f.Invites)
	if r := f.Result; r != nil {
		codes := make([]string, 0, len(r.ByStatus))
		for c := range r.ByStatus {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		var parts []string
		for _, c := range codes {
			parts = append(parts, c+"×"+strconv.Itoa(r.ByStatus[c]))
		}
		fmt.Fprintf(&b, " from %d sources in %.2f s (%.0f/s; last answer after %.2f s): %s, unanswered %d, retransmitted %d, kernel UDP buffer drops %d",
			r.Sources, r.SendS, r.RateSent, r.DurationS, strings.Join(parts, " "), r.Unanswered, r.Retransmits, r.RcvbufErrors)
	}
	if p := f.Before; p != nil {
		fmt.Fprintf(&b, "; live calls before: gaps video %.0f audio %.0f ms, %d skipped, min %.1f fps", p.MaxVideoGapMs, p.MaxAudioGapMs, p.SkippedFrames, p.MinVideoFPS)
	}
	if p := f.During; p != nil {
		fmt.Fprintf(&b, "; during: gaps video %.0f audio %.0f ms, %d skipped, min %.1f fps", p.MaxVideoGapMs, p.MaxAudioGapMs, p.SkippedFrames, p.MinVideoFPS)
	}
	if f.GatewayStallMs > 0 {
		fmt.Fprintf(&b, "; gateway scheduling delay max %.0f ms", f.GatewayStallMs)
	}
	fmt.Fprintf(&b, "; gateway goroutines %d→%d, fds %d→%d, RSS %.1f→%.1f MB", f.GoroutinesBefore, f.GoroutinesAfter, f.FDsBefore, f.FDsAfter, f.RSSBeforeMB, f.RSSAfterMB)
	if f.Harmed {
		b.WriteString("; LIVE CALLS HARMED")
	}
	return b.String()
}
