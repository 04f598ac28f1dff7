package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/sip"
)

// inboundFlags are the dial-in flags (issue 17): who may call the gateway,
// what becomes of a call, the accounts registered at start.
type inboundFlags struct {
	RTMPURL, Allow, UsersFile, Realm, Prompt, AccountsFile string
	Ring                                                   time.Duration
	EarlyMedia, Record, Registrar, Hook                    bool
	// Users (-inbound-user) and Accounts (-account) are repeatable and
	// hold secrets: their String shows no password.
	Users    secretList
	Accounts secretList

	// Checked and parsed values.
	usersOnArgv  bool // -inbound-user on the command line, where ps shows it
	accountsArgv bool
	allow        []netip.Prefix
	users        map[string]string
	accounts     []callmgr.Account
}

// secretList is a repeatable flag whose values hold passwords: kept as
// given (checked later, so that a flag error never echoes a password) and
// shown as a count.
type secretList []string

func (l *secretList) String() string {
	if l == nil || len(*l) == 0 {
		return ""
	}
	return fmt.Sprintf("(%d given)", len(*l))
}

func (l *secretList) Set(v string) error { *l = append(*l, v); return nil }

// inboundFlags registers the dial-in flags.
func (c *config) inboundFlags(fs *flag.FlagSet) {
	in := &c.Inbound
	fs.StringVar(&in.RTMPURL, "inbound-rtmp-url", "", "answer every incoming call let in (see -inbound-allow, -inbound-users, -account) and publish it to URL/{Request-URI user} (rtmp:// or rtmps:// application URL); the hook (-inbound-hook) may decide otherwise")
	fs.StringVar(&in.Allow, "inbound-allow", "", "comma list of networks (CIDR) or addresses whose INVITEs are let in without authentication (trunks, PBXs)")
	fs.StringVar(&in.UsersFile, "inbound-users", "", "file of the digest users callers (and -registrar clients) authenticate as, one USER:PASSWORD a line (# comments)")
	fs.Var(&in.Users, "inbound-user", "USER:PASSWORD of a digest user callers authenticate as (repeatable; visible in ps: prefer -inbound-users FILE)")
	fs.StringVar(&in.Realm, "inbound-realm", "", "realm of the digest challenge to callers (default: sipstream)")
	fs.DurationVar(&in.Ring, "inbound-ring", 0, "how long an incoming call rings (180) before it is answered, e.g. 2s (0: answer at once)")
	fs.BoolVar(&in.EarlyMedia, "inbound-early-media", false, "while ringing, answer 183 with media and play silence (or -inbound-prompt) to the caller (needs -inbound-ring)")
	fs.StringVar(&in.Prompt, "inbound-prompt", "", "sound file in -sound-dir played in a loop to callers while ringing, as early media (needs -inbound-ring)")
	fs.BoolVar(&in.Record, "inbound-record", false, "record every answered incoming call (needs -record-dir)")
	fs.BoolVar(&in.Registrar, "registrar", false, "let the -inbound-users register to the gateway (phones, trunks); calls from a registered contact's address are let in")
	fs.Var(&in.Accounts, "account", "sip:USER[:PASSWORD]@HOST[:PORT][;transport=tcp][;proxy=HOST:PORT][;authuser=NAME] registered at start and kept registered; calls for it are let in (repeatable; visible in ps: prefer -accounts FILE)")
	fs.StringVar(&in.AccountsFile, "accounts", "", "file of -account values, one a line (# comments)")
	fs.BoolVar(&in.Hook, "inbound-hook", true, "ask the default application's hook (-webhook) about each incoming call: POST URL/OnCallEvent, whose JSON answer may give the target (rtmpUrl, rtmpStream, toStream, record), reject or redirect; no answer: -inbound-rtmp-url, else 480")
}

// hookOn reports whether incoming calls are put to the webhook.
func (c *config) hookOn() bool { return c.Inbound.Hook && c.Webhook != "" }

// inboundOn reports whether the gateway takes calls at all.
func (c *config) inboundOn() bool {
	return c.Inbound.RTMPURL != "" || c.hookOn() || len(c.Inbound.accounts) > 0
}

// checkInbound validates the dial-in flags (faults go to add).
func (c *config) checkInbound(add func(format string, args ...any)) {
	in := &c.Inbound
	if in.RTMPURL != "" {
		if u, err := url.Parse(strings.TrimSpace(in.RTMPURL)); err != nil || (u.Scheme != "rtmp" && u.Scheme != "rtmps") || u.Host == "" {
			add("-inbound-rtmp-url must be an rtmp:// or rtmps:// URL")
		}
	}
	for _, p := range strings.Split(in.Allow, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				add("-inbound-allow %q: want a network (10.0.0.0/8) or an address", p)
				continue
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		in.allow = append(in.allow, pfx.Masked())
	}
	in.users = map[string]string{}
	addUser := func(line, from string) {
		u, p, err := parseCredentials(line, from)
		switch {
		case err != nil:
			add("%s: want USER:PASSWORD", from)
		case sip.ValidateUser(u) != nil:
			add("%s: user %q is not a SIP user name", from, u)
		case in.users[u] != "":
			add("%s: user %q given twice", from, u)
		default:
			in.users[u] = p
		}
	}
	eachValue(in.Users, "-inbound-user", in.UsersFile, "-inbound-users", add, addUser)
	if in.Realm != "" && (strings.ContainsAny(in.Realm, "\"\\") || sip.ValidateHeaderValue(in.Realm) != nil) {
		add("-inbound-realm %q: no quotes, backslashes or control characters", in.Realm)
	}
	if in.Ring < 0 || in.Ring > 2*time.Minute {
		add("-inbound-ring %v: want 0 to 2m", in.Ring)
	}
	if (in.EarlyMedia || in.Prompt != "") && in.Ring == 0 {
		add("-inbound-early-media and -inbound-prompt need -inbound-ring (how long the early media plays)")
	}
	if in.Prompt != "" {
		if c.SoundDir == "" {
			add("-inbound-prompt needs -sound-dir (the prompt is a file in it)")
		} else if st, err := os.Stat(filepath.Join(c.SoundDir, in.Prompt)); !filepath.IsLocal(in.Prompt) || err != nil || !st.Mode().IsRegular() {
			add("-inbound-prompt %q: not a file in -sound-dir", in.Prompt)
		}
	}
	if in.Record && c.RecordDir == "" {
		add("-inbound-record needs -record-dir")
	}
	if in.Registrar && len(in.users) == 0 {
		add("-registrar needs -inbound-users or -inbound-user (who may register)")
	}
	if c.set["inbound-hook"] && in.Hook && c.Webhook == "" {
		add("-inbound-hook needs -webhook (the default application's hook)")
	}
	names := map[string]bool{}
	addAccount := func(v, from string) {
		a, err := wcsapi.ParseAccount(v)
		if err != nil {
			add("%s: %v", from, err)
			return
		}
		name := a.User + "@" + a.Domain
		if names[name] {
			add("%s: account %s given twice", from, name)
			return
		}
		names[name] = true
		in.accounts = append(in.accounts, a)
	}
	eachValue(in.Accounts, "-account", in.AccountsFile, "-accounts", add, addAccount)
	if !c.inboundOn() {
		for _, f := range []string{"inbound-allow", "inbound-users", "inbound-user", "inbound-realm", "inbound-ring",
			"inbound-early-media", "inbound-prompt", "inbound-record", "registrar"} {
			if c.set[f] {
				add("-%s needs incoming calls on: -inbound-rtmp-url, -webhook (the hook decides) or -account", f)
			}
		}
	}
}

// eachValue calls fn with each value of a repeatable flag (named
// "FLAG #n") and each line of its file flag (named "FILEFLAG line n";
// blank lines and # comments skipped).
func eachValue(values []string, flagName, file, fileFlag string, add func(string, ...any), fn func(v, from string)) {
	for i, v := range values {
		fn(v, fmt.Sprintf("%s #%d", flagName, i+1))
	}
	if file == "" {
		return
	}
	b, err := os.ReadFile(file)
	if err != nil {
		add("%s: %v", fileFlag, err)
		return
	}
	for i, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			fn(l, fmt.Sprintf("%s line %d", fileFlag, i+1))
		}
	}
}

// secrets are the passwords of the dial-in flags, for the log filter.
func (in *inboundFlags) secrets() []string {
	var out []string
	for _, p := range in.users {
		out = append(out, p)
	}
	for _, a := range in.accounts {
		out = append(out, a.Password)
	}
	return out
}

// managerConfig sets the Manager's side of dial-in: who may call, the
// accounts, and inbound's OnIncoming when calls are taken at all.
func (c *config) managerConfig(m *callmgr.Config, inbound *wcsapi.Inbound) {
	in := &c.Inbound
	m.Accounts = in.accounts
	if !c.inboundOn() {
		return
	}
	m.OnIncoming = inbound.OnIncoming
	m.Inbound = callmgr.InboundConfig{AllowFrom: in.allow, Users: in.users, Realm: in.Realm, Registrar: in.Registrar}
}

// dialinConfig is the Handler's side of dial-in.
func (c *config) dialinConfig(a *wcsapi.Config, inbound *wcsapi.Inbound) {
	if !c.inboundOn() {
		return
	}
	in := &c.Inbound
	a.Inbound = inbound
	a.Dialin = wcsapi.DialinConfig{RTMPURL: in.RTMPURL, Record: in.Record, Ring: in.Ring, EarlyMedia: in.EarlyMedia,
		Prompt: in.Prompt, Hook: c.hookOn()}
}

// logInbound says whether and how calls are taken, and warns about
// passwords on the command line and a gateway nobody may call.
func logInbound(log *slog.Logger, c config) {
	in := c.Inbound
	if in.usersOnArgv {
		log.Warn("-inbound-user on the command line is visible to every user of this machine (ps); use -inbound-users FILE")
	}
	if in.accountsArgv && len(in.secrets()) > 0 {
		log.Warn("-account on the command line is visible to every user of this machine (ps) with its password; use -accounts FILE")
	}
	if !c.inboundOn() {
		log.Info("incoming calls off (-inbound-rtmp-url, -webhook or -account turns them on)")
		return
	}
	log.Info("incoming calls on", "default-rtmp-url", in.RTMPURL != "", "hook", c.hookOn(), "allow", in.Allow,
		"users", len(in.users), "registrar", in.Registrar, "accounts", len(in.accounts), "ring", in.Ring)
	if len(in.allow) == 0 && len(in.users) == 0 && len(in.accounts) == 0 {
		log.Warn("incoming calls are on but nobody may call: every INVITE gets 403 (set -inbound-allow, -inbound-users or -account)")
	}
}
