// Package grammarcases is the golden table of SIP grammar cases: valid and
// invalid users, hosts, Call-IDs, header names and values, callees and
// outbound proxies. sip's validators are tested against it, and callmgr's
// tests feed the same inputs through StartCall's validation, so both layers
// are shown to give the same answer.
package grammarcases

import "strings"

// Kind says which grammar element a case is about.
type Kind string

// The kinds, with the sip function that checks each.
const (
	User        Kind = "user"         // sip.ValidateUser
	HostPort    Kind = "hostport"     // sip.ValidateHostPort
	CallID      Kind = "callid"       // sip.ValidateCallID
	HeaderName  Kind = "header name"  // sip.ValidateHeaderName
	HeaderValue Kind = "header value" // sip.ValidateHeaderValue
	Callee      Kind = "callee"       // sip.ValidateCallee(In, Domain)
	Proxy       Kind = "proxy"        // sip.ValidateOutboundProxy
)

// Case is one input and whether it is valid.
type Case struct {
	Kind   Kind
	In     string
	Domain string // Callee only: the domain a bare user is addressed at
	Valid  bool
}

func ok(k Kind, in string) Case  { return Case{Kind: k, In: in, Valid: true} }
func bad(k Kind, in string) Case { return Case{Kind: k, In: in} }

// label63 and host253 are at the limits (RFC 1035).
var (
	label63 = strings.Repeat("a", 63)
	host253 = strings.Repeat(label63+".", 3) + strings.Repeat("b", 61)
)

// Cases is the table.
var Cases = []Case{
	ok(User, "alice"),
	ok(User, "alice.smith+1"),
	ok(User, "1001"),
	ok(User, "+4930123"),
	ok(User, "a%20b"),
	ok(User, "bob;phone-context=x"),
	ok(User, "u&=+$,;?/"),
	ok(User, "-_.!~*'()"),
	ok(User, strings.Repeat("u", 256)),
	bad(User, ""),
	bad(User, "alice smith"),
	bad(User, "bob@x"),
	bad(User, "a:b"),
	bad(User, "<bob>"),
	bad(User, `"bob"`),
	bad(User, `a\b`),
	bad(User, "a#b"),
	bad(User, "a[b"),
	bad(User, "a%2"),
	bad(User, "a%zz"),
	bad(User, "a\tb"),
	bad(User, "a\r\nVia: x"),
	bad(User, "a\x00"),
	bad(User, "jörg"),
	bad(User, "//bob"), // sipgo reads "sip://" as hierarchical slashes
	bad(User, strings.Repeat("u", 257)),

	ok(HostPort, "pbx.example"),
	ok(HostPort, "pbx.example."),
	ok(HostPort, "PBX.Example.COM"),
	ok(HostPort, "pbx"),
	ok(HostPort, "sip_pbx"),          // Docker Compose service name
	ok(HostPort, "stack_asterisk_1"), // Docker Compose v1 container name
	ok(HostPort, "3f2a1b9c8d7e"),     // Docker's default container host name
	ok(HostPort, "a-b.c-d.example"),
	ok(HostPort, "xn--bcher-kva.example"),
	ok(HostPort, "pbx.example:5060"),
	ok(HostPort, "pbx:1"),
	ok(HostPort, "pbx:65535"),
	ok(HostPort, "10.0.0.1"),
	ok(HostPort, "10.0.0.1:5080"),
	ok(HostPort, "[::1]"),
	ok(HostPort, "[::1]:5060"),
	ok(HostPort, "[2001:db8::1]:5061"),
	ok(HostPort, "[::ffff:10.0.0.1]"),
	ok(HostPort, label63+".example"),
	ok(HostPort, host253),
	bad(HostPort, ""),
	bad(HostPort, "pbx example"),
	bad(HostPort, "pbx..example"),
	bad(HostPort, ".pbx"),
	bad(HostPort, "-pbx.example"),
	bad(HostPort, "pbx-.example"),
	bad(HostPort, "pbx/x"),
	bad(HostPort, "bob@pbx"),
	bad(HostPort, "pbx\r\n"),
	bad(HostPort, "bücher.example"),
	bad(HostPort, "10.0.0.256"),
	bad(HostPort, "1.2.3"),
	bad(HostPort, "12345"),
	bad(HostPort, "::1"),
	bad(HostPort, "2001:db8::1"),
	bad(HostPort, "[::1"),
	bad(HostPort, "[::1]x"),
	bad(HostPort, "[fe80::1%eth0]"),
	bad(HostPort, "[10.0.0.1]"),
	bad(HostPort, "pbx:"),
	bad(HostPort, "pbx:0"),
	bad(HostPort, "pbx:65536"),
	bad(HostPort, "pbx:99999"),
	bad(HostPort, "pbx:+5"),
	bad(HostPort, "pbx:50a"),
	bad(HostPort, "sip:pbx.example"),
	bad(HostPort, strings.Repeat("a", 64)+".example"),
	bad(HostPort, host253+"b"),

	ok(CallID, "a"),
	ok(CallID, "abc-123@host"),
	ok(CallID, "f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com"),
	ok(CallID, "a@[::1]"),
	ok(CallID, `w-.!%*_+`+"`"+`'~()<>:\"/[]?{}`),
	ok(CallID, strings.Repeat("c", 128)),
	ok(CallID, strings.Repeat("c", 256)),
	bad(CallID, ""),
	bad(CallID, "a b"),
	bad(CallID, "a@b@c"),
	bad(CallID, "@b"),
	bad(CallID, "a@"),
	bad(CallID, "a;b"),
	bad(CallID, "a=b"),
	bad(CallID, "a,b"),
	bad(CallID, "a\tb"),
	bad(CallID, "a\r\nVia: x"),
	bad(CallID, "ä"),
	bad(CallID, strings.Repeat("c", 257)),

	ok(HeaderName, "X-Room"),
	ok(HeaderName, "x-token"),
	ok(HeaderName, "P-Asserted-Identity"),
	ok(HeaderName, "Subject"),
	ok(HeaderName, "s"), // Subject's compact form
	ok(HeaderName, "Supported"),
	ok(HeaderName, "Expires"),
	ok(HeaderName, "User-to-User"),
	ok(HeaderName, "X.!%*_+`'~"),
	ok(HeaderName, strings.Repeat("h", 64)),
	bad(HeaderName, ""),
	bad(HeaderName, "X Y"),
	bad(HeaderName, "X:Y"),
	bad(HeaderName, "X-Ü"),
	bad(HeaderName, "X\r\nVia"),
	bad(HeaderName, "X(Y)"),
	bad(HeaderName, strings.Repeat("h", 65)),
	bad(HeaderName, "Via"), bad(HeaderName, "via"), bad(HeaderName, "VIA"), bad(HeaderName, "v"), bad(HeaderName, "V"),
	bad(HeaderName, "From"), bad(HeaderName, "f"), bad(HeaderName, "F"),
	bad(HeaderName, "To"), bad(HeaderName, "t"), bad(HeaderName, "T"),
	bad(HeaderName, "Call-ID"), bad(HeaderName, "call-id"), bad(HeaderName, "CALL-ID"), bad(HeaderName, "i"), bad(HeaderName, "I"),
	bad(HeaderName, "CSeq"), bad(HeaderName, "cseq"),
	bad(HeaderName, "Max-Forwards"),
	bad(HeaderName, "Contact"), bad(HeaderName, "m"), bad(HeaderName, "M"),
	bad(HeaderName, "Content-Length"), bad(HeaderName, "l"), bad(HeaderName, "L"),
	bad(HeaderName, "Content-Type"), bad(HeaderName, "c"), bad(HeaderName, "C"),
	bad(HeaderName, "Content-Encoding"), bad(HeaderName, "e"),
	bad(HeaderName, "Route"), bad(HeaderName, "Record-Route"),
	bad(HeaderName, "Authorization"), bad(HeaderName, "proxy-authorization"),
	bad(HeaderName, "WWW-Authenticate"), bad(HeaderName, "Proxy-Authenticate"),
	bad(HeaderName, "Session-Expires"), bad(HeaderName, "x"), bad(HeaderName, "Min-SE"),
	bad(HeaderName, "RSeq"), bad(HeaderName, "RAck"),

	ok(HeaderValue, ""),
	ok(HeaderValue, "42"),
	ok(HeaderValue, "a b\tc"),
	ok(HeaderValue, `"Alice" <sip:alice@pbx.example>;tag=1`),
	ok(HeaderValue, "Grüße"),
	ok(HeaderValue, strings.Repeat("v", 1025)),
	ok(HeaderValue, strings.Repeat("v", 4096)),
	bad(HeaderValue, "a\r\nVia: x"),
	bad(HeaderValue, "a\rb"),
	bad(HeaderValue, "a\nb"),
	bad(HeaderValue, "a\n b"), // no line folding
	bad(HeaderValue, "a\x00b"),
	bad(HeaderValue, "a\x01b"),
	bad(HeaderValue, "a\x7fb"),
	bad(HeaderValue, "\xff"),
	bad(HeaderValue, strings.Repeat("v", 4097)),

	ok(Callee, "sip:bob@pbx.example"),
	ok(Callee, "SIP:bob@pbx.example"),
	ok(Callee, "sips:bob@pbx.example;transport=tls"),
	ok(Callee, "sip:bob@[::1]:5060"),
	ok(Callee, "sip:pbx.example"),
	ok(Callee, "sip:+4930123@pbx;user=phone"),
	ok(Callee, "sip:bob@pbx;lr"),
	ok(Callee, "sip:bob@pbx?subject=hi&priority=urgent"),
	ok(Callee, "sip:bob@sip_pbx:5070"),
	ok(Callee, "bob@10.0.0.1:5070"),
	ok(Callee, "bob@pbx_1"),
	{Kind: Callee, In: "1002", Domain: "pbx.example", Valid: true},
	{Kind: Callee, In: "+4930123", Domain: "pbx.example", Valid: true},
	bad(Callee, ""),
	bad(Callee, "bob"),
	bad(Callee, "bob smith@h"),
	bad(Callee, "<sip:bob@h>"),
	bad(Callee, `"bob"@h`),
	bad(Callee, "sip:"),
	bad(Callee, "sip:@h"),
	bad(Callee, "sip:bob:secret@h"),
	bad(Callee, "sip:bob@h:99999"),
	bad(Callee, "sip:bob@h;=x"),
	bad(Callee, "sip:bob@h;a b"),
	bad(Callee, "sip:bob@h?x"),
	bad(Callee, "sip:h;maddr=[::1]"), // sipgo takes the "[" for an IPv6 host
	ok(Callee, "sip:h;maddr=%5B::1%5D"),
	bad(Callee, "sip:bob@h\r\nVia: x"),
	bad(Callee, "sip:bob@10.0.0.256"),
	bad(Callee, "bob@ho st"),
	bad(Callee, "bob@host:0"),
	bad(Callee, "http://bob@h"),
	bad(Callee, "tel:+15551234"),
	{Kind: Callee, In: "tel:+15551234", Domain: "pbx.example"},
	{Kind: Callee, In: "bob smith", Domain: "pbx.example"},
	bad(Callee, "sip:bob@h;x="+strings.Repeat("a", 1013)), // 1025 bytes
	ok(Callee, "sip:bob@h;x="+strings.Repeat("a", 1012)),  // 1024 bytes

	ok(Proxy, "10.0.0.1:5080"),
	ok(Proxy, "proxy.example"),
	ok(Proxy, "sip_proxy:5060"),
	ok(Proxy, "[::1]:5060"),
	ok(Proxy, "sip:proxy.example;lr"),
	ok(Proxy, "sips:proxy.example:5061"),
	bad(Proxy, ""),
	bad(Proxy, "proxy example"),
	bad(Proxy, "host:0"),
	bad(Proxy, "proxy:99999"),
	bad(Proxy, "sip:user:pw@proxy"),
	bad(Proxy, "sip:proxy\r\n"),
}
