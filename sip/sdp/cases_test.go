package sdp

import (
	"net/netip"
	"strings"

	"github.com/sipstream/sipstream/media"
)

// crlf turns a readable SDP literal into a wire body (CRLF line ends).
func crlf(s string) string {
	s = strings.TrimLeft(s, "\n")
	return strings.ReplaceAll(s, "\n", "\r\n")
}

var (
	localAddr = netip.MustParseAddr("192.0.2.10")
	// keyA is a 30-byte AES_CM_128 master key+salt: base64 below.
	keyA    = []byte("0123456789abcdef0123456789abcd")
	keyAB64 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNk"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// fullOffer is the offer most answer cases answer: audio on 10000, video on
// 10002, both sendrecv.
func fullOffer() OfferConfig {
	return OfferConfig{
		Addr:  localAddr,
		Audio: &MediaConfig{Port: 10000},
		Video: &MediaConfig{Port: 10002, Feedback: true},
	}
}

func audioOffer() OfferConfig {
	return OfferConfig{Addr: localAddr, Audio: &MediaConfig{Port: 10000}}
}

// negotiateCase is one real-world (or real-world shaped) answer to an offer
// built from cfg, and what negotiating it must give.
type negotiateCase struct {
	name   string
	cfg    OfferConfig
	answer string
	want   []media.StreamSpec
	err    error // ErrNoCommonCodec or ErrInvalid
}

var pcmu = media.PayloadFormat{PayloadType: 0, Codec: media.CodecPCMU, ClockRate: 8000}
var pcma = media.PayloadFormat{PayloadType: 8, Codec: media.CodecPCMA, ClockRate: 8000}

func te(pt uint8, fmtp string) media.PayloadFormat {
	return media.PayloadFormat{PayloadType: pt, Codec: media.CodecTelephoneEvent, ClockRate: 8000, Fmtp: fmtp}
}

func h264(pt uint8, fmtp string) media.PayloadFormat {
	return media.PayloadFormat{PayloadType: pt, Codec: media.CodecH264, ClockRate: 90000, Fmtp: fmtp}
}

func rtx(pt uint8, fmtp string) media.PayloadFormat {
	return media.PayloadFormat{PayloadType: pt, Codec: media.CodecRTX, ClockRate: 90000, Fmtp: fmtp}
}

// rtxOffer is fullOffer with RFC 4588 retransmission offered for video.
func rtxOffer() OfferConfig {
	cfg := fullOffer()
	cfg.Video.RTX = true
	return cfg
}

var negotiateCases = []negotiateCase{
	{
		name: "asterisk-pcma",
		cfg:  audioOffer(),
		answer: crlf(`
v=0
o=- 1697043823 1697043825 IN IP4 203.0.113.5
s=Asterisk
c=IN IP4 203.0.113.5
t=0 0
m=audio 14562 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv
`),
		want: []media.StreamSpec{{
			Kind: media.KindAudio, Formats: []media.PayloadFormat{pcma, te(101, "0-16")},
			Local: ap("192.0.2.10:10000"), Remote: ap("203.0.113.5:14562"), RemoteRTCP: ap("203.0.113.5:14563"),
		}},
	},
	{
		name: "freeswitch-audio-video",
		cfg:  fullOffer(),
		answer: crlf(`
v=0
o=FreeSWITCH 1700000000 1700000001 IN IP4 198.51.100.7
s=FreeSWITCH
c=IN IP4 198.51.100.7
t=0 0
m=audio 23450 RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=rtcp:23451 IN IP4 198.51.100.7
m=video 23460 RTP/AVP 96
b=AS:3072
a=rtpmap:96 H264/90000
a=fmtp:96 profile-level-id=42e01f;packetization-mode=1
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtcp:23461 IN IP4 198.51.100.7
`),
		want: []media.StreamSpec{{
			Kind: media.KindAudio, Formats: []media.PayloadFormat{pcmu, te(101, "0-16")},
			Local: ap("192.0.2.10:10000"), Remote: ap("198.51.100.7:23450"), RemoteRTCP: ap("198.51.100.7:23451"),
		}, {
			Kind:    media.KindVideo,
			Formats: []media.PayloadFormat{{PayloadType: 96, Codec: media.CodecH264, ClockRate: 90000, Fmtp: "profile-level-id=42e01f;packetization-mode=1"}},
			Local:   ap("192.0.2.10:10002"), Remote: ap("198.51.100.7:23460"), RemoteRTCP: ap("198.51.100.7:23461"),
			Feedback: media.Feedback{NACK: true, PLI: true, FIR: true},
		}},
	},
	{
		// Polycom/Cisco-style video endpoint: own H.264 payload type,
		// b=TIAS, media-level c=, wildcard rtcp-fb, RTCP on another address.
		name: "polycom-video-renumbered",
		cfg:  fullOffer(),
		answer: crlf(`
v=0
o=- 1342 1343 IN IP4 10.1.1.20
s=-
t=0 0
m=audio 2228 RTP/AVP 8 101
c=IN IP4 10.1.1.20
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
m=video 2230 RTP/AVP 109
c=IN IP4 10.1.1.20
b=TIAS:1024000
a=rtpmap:109 H264/90000
a=fmtp:109 profile-level-id=428016;max-br=1024;max-mbps=108000;max-fs=3600;packetization-mode=1
a=rtcp-fb:* ccm fir
a=rtcp-fb:* nack pli
a=rtcp:2241 IN IP4 10.1.1.21
a=sendrecv
`),
		want: []media.StreamSpec{{
			Kind: media.KindAudio, Formats: []media.PayloadFormat{pcma, te(101, "0-15")},
			Local: ap("192.0.2.10:10000"), Remote: ap("10.1.1.20:2228"), RemoteRTCP: ap("10.1.1.20:2229"),
		}, {
			Kind:    media.KindVideo,
			Formats: []media.PayloadFormat{{PayloadType: 109, Codec: media.CodecH264, ClockRate: 90000, Fmtp: "profile-level-id=428016;max-br=1024;max-mbps=108000;max-fs=3600;packetization-mode=1"}},
			Local:   ap("192.0.2.10:10002"), Remote: ap("10.1.1.20:2230"), RemoteRTCP: ap("10.1.1.21:2241"),
			Feedback: media.Feedback{PLI: true, FIR: true},
		}},
	},
	{
		// sipp's built-in uas scenario answers PCMU only, LF line ends.
		name: "sipp-uas-default",
		cfg:  audioOffer(),
		answer: `v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
`,
		want: []media.StreamSpec{{
			Kind: media.KindAudio, Formats: []media.PayloadFormat{pcmu},
			Local: ap("192.0.2.10:10000"), Remote: ap("127.0.0.1:6000"), RemoteRTCP: ap("127.0.0.1:6001"),
		}},
	},
	{
		// Linphone: opus renumbered, video VP8 only, rtcp-mux, rtcp-fb on
		// the VP8 payload type, recvonly video (its camera is off).
		name: "linphone-opus-vp8-mux",
		cfg: OfferConfig{Addr: localAddr,
			Audio: &MediaConfig{Port: 10000, RTCPMux: true},
			Video: &MediaConfig{Port: 10002, RTCPMux: true, Feedback: true}},
		answer: crlf(`
v=0
o=bob 2893 1 IN IP4 192.168.1.33
s=Talk
c=IN IP4 192.168.1.33
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
m=audio 7078 RTP/AVP 96 101
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:101 telephone-event/8000
a=rtcp-mux
a=rtcp:7079
m=video 9078 RTP/AVP 97
a=rtpmap:97 VP8/90000
a=rtcp-mux
a=rtcp-fb:97 nack pli
a=rtcp-fb:97 ccm fir
a=rtcp-fb:97 goog-remb
a=recvonly
`),
		want: []media.StreamSpec{{
			Kind:    media.KindAudio,
			Formats: []media.PayloadFormat{{PayloadType: 96, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2, Fmtp: "useinbandfec=1"}, te(101, "")},
			Local:   ap("192.0.2.10:10000"), Remote: ap("192.168.1.33:7078"), RemoteRTCP: ap("192.168.1.33:7078"), RTCPMux: true,
		}, {
			Kind:    media.KindVideo,
			Formats: []media.PayloadFormat{{PayloadType: 97, Codec: media.CodecVP8, ClockRate: 90000}},
			Local:   ap("192.0.2.10:10002"), Remote: ap("192.168.1.33:9078"), RemoteRTCP: ap("192.168.1.33:9078"), RTCPMux: true,
			Direction: media.SendOnly, Feedback: media.Feedback{PLI: true, FIR: true},
		}},
	},
	{
		// baresip answers speex wideband; the offer was recvonly, so we stay
		// recvonly even though the peer says sendrecv.
		name: "baresip-speex16-recvonly",
		cfg:  OfferConfig{Addr: localAddr, Audio: &MediaConfig{Port: 10000, Direction: media.RecvOnly}},
		answer: crlf(`
v=0
o=- 174532 174533 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 36002 RTP/AVP 99 101
b=AS:64
a=rtpmap:99 speex/16000
a=fmtp:99 mode="1,any";vbr=off
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=label:1
a=ssrc:12345 cname:x@y
`),
		want: []media.StreamSpec{{
			Kind:    media.KindAudio,
			Formats: []media.PayloadFormat{{PayloadType: 99, Codec: media.CodecSpeex, ClockRate: 16000, Fmtp: `mode="1,any";vbr=off`}, te(101, "0-15")},
			Local:   ap("192.0.2.10:10000"), Remote: ap("127.0.0.1:36002"), RemoteRTCP: ap("127.0.0.1:36003"),
			Direction: media.RecvOnly,
		}},
	},
	{
		// An answer accepting RFC 4588 retransmission for H.264 (a
		// FreeSWITCH/Janus-style video answer).
		name: "rtx-answered",
		cfg:  rtxOffer(),
		answer: crlf(`
v=0
o=- 1700000000 1700000001 IN IP4 198.51.100.7
s=-
c=IN IP4 198.51.100.7
t=0 0
m=audio 23450 RTP/AVP 8
a=rtpmap:8 PCMA/8000
m=video 23460 RTP/AVP 96 102
a=rtpmap:96 H264/90000
a=fmtp:96 profile-level-id=42e01f;packetization-mode=1
a=rtpmap:102 rtx/90000
a=fmtp:102 apt=96
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
`),
		want: []media.StreamSpec{{
			Kind: media.KindAudio, Formats: []media.PayloadFormat{pcma},
			Local: ap("192.0.2.10:10000"), Remote: ap("198.51.100.7:23450"), RemoteRTCP: ap("198.51.100.7:23451"),
		}, {
			Kind:    media.KindVideo,
			Formats: []media.PayloadFormat{h264(96, "profile-level-id=42e01f;packetization-mode=1"), rtx(102, "apt=96")},
			Local:   ap("192.0.2.10:10002"), Remote: ap("198.51.100.7:23460"), RemoteRTCP: ap("198.51.100.7:23461"),
			Feedback: media.Feedback{NACK: true, PLI: true},
		}},
	},
	{
		// rtx listed before the codec (it must still come after it), an rtx
		// format whose apt names nothing negotiated, one whose apt is not a
		// number, one on the wrong clock, and audio rtx: only the good one
		// is kept.
		name: "rtx-first-and-unknown-apt",
		cfg:  rtxOffer(),
		answer: crlf(`
v=0
o=- 1 2 IN IP4 203.0.113.5
s=-
c=IN IP4 203.0.113.5
t=0 0
m=audio 4000 RTP/AVP 8 120
a=rtpmap:120 rtx/8000
a=fmtp:120 apt=8
m=video 4002 RTP/AVP 104 105 106 107 97
a=rtpmap:104 rtx/90000
a=fmtp:104 apt=97;rtx-time=3000
a=rtpmap:105 rtx/90000
a=fmtp:105 apt=100
a=rtpmap:106 rtx/90000
a=fmtp:106 apt=x97
a=rtpmap:107 rtx/48000
a=fmtp:107 apt=97
a=rtpmap:97 VP8/90000
`),
		want: []media.StreamSpec{{
			Kind: media.KindAudio, Formats: []media.PayloadFormat{pcma},
			Local: ap("192.0.2.10:10000"), Remote: ap("203.0.113.5:4000"), RemoteRTCP: ap("203.0.113.5:4001"),
		}, {
			Kind:    media.KindVideo,
			Formats: []media.PayloadFormat{{PayloadType: 97, Codec: media.CodecVP8, ClockRate: 90000}, rtx(104, "apt=97;rtx-time=3000")},
			Local:   ap("192.0.2.10:10002"), Remote: ap("203.0.113.5:4002"), RemoteRTCP: ap("203.0.113.5:4003"),
		}},
	},
	{
		// rtx in the answer of an offer without it is dropped.
		name: "rtx-not-offered",
		cfg:  OfferConfig{Addr: localAddr, Video: &MediaConfig{Port: 10002}},
		answer: "v=0\no=- 1 2 IN IP4 203.0.113.5\ns=-\nc=IN IP4 203.0.113.5\nt=0 0\n" +
			"m=video 4002 RTP/AVP 96 102\na=rtpmap:96 H264/90000\na=rtpmap:102 rtx/90000\na=fmtp:102 apt=96\n",
		want: []media.StreamSpec{{
			Kind:    media.KindVideo,
			Formats: []media.PayloadFormat{h264(96, "")},
			Local:   ap("192.0.2.10:10002"), Remote: ap("203.0.113.5:4002"), RemoteRTCP: ap("203.0.113.5:4003"),
		}},
	},
	{
		// An answer with only rtx for video has no codec in common there.
		name: "rtx-only",
		cfg:  OfferConfig{Addr: localAddr, Video: &MediaConfig{Port: 10002, RTX: true}},
		answer: "v=0\no=- 1 2 IN IP4 203.0.113.5\ns=-\nc=IN IP4 203.0.113.5\nt=0 0\n" +
			"m=video 4002 RTP/AVP 102\na=rtpmap:102 rtx/90000\na=fmtp:102 apt=96\n",
		err: ErrNoCommonCodec,
	},
	{
		name: "video-rejected",
		cfg:  fullOffer(),
		answer: crlf(`
v=0
o=- 1 2 IN IP4 203.0.113.5
s=-
c=IN IP4 203.0.113.5
t=0 0
m=audio 4000 RTP/AVP 0 8
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
m=video 0 RTP/AVP 96
`),
		want: []media.StreamSpec{{
			Kind: media.KindAudio, Formats: []media.PayloadFormat{pcmu, pcma},
			Local: ap("192.0.2.10:10000"), Remote: ap("203.0.113.5:4000"), RemoteRTCP: ap("203.0.113.5:4001"),
		}},
	},
	{
		// Hold answer: the peer only sends, and RFC 2543 style 0.0.0.0.
		name: "hold-sendonly-zero-address",
		cfg:  audioOffer(),
		answer: crlf(`
v=0
o=- 1 3 IN IP4 203.0.113.5
s=-
c=IN IP4 0.0.0.0
t=0 0
m=audio 4000 RTP/AVP 8
a=sendonly
`),
		want: []media.StreamSpec{{
			Kind: media.KindAudio, Formats: []media.PayloadFormat{pcma},
			Local: ap("192.0.2.10:10000"), Remote: ap("0.0.0.0:4000"), RemoteRTCP: ap("0.0.0.0:4001"),
			Direction: media.RecvOnly,
		}},
	},
	{
		name:   "inactive-session-level",
		cfg:    audioOffer(),
		answer: "v=0\no=- 1 3 IN IP4 203.0.113.5\ns=-\nc=IN IP4 203.0.113.5\nt=0 0\na=inactive\nm=audio 4000 RTP/AVP 8\n",
		want: []media.StreamSpec{{
			Kind: media.KindAudio, Formats: []media.PayloadFormat{pcma},
			Local: ap("192.0.2.10:10000"), Remote: ap("203.0.113.5:4000"), RemoteRTCP: ap("203.0.113.5:4001"),
			Direction: media.Inactive,
		}},
	},
	{
		name: "sdes-srtp",
		cfg:  OfferConfig{Addr: localAddr, Audio: &MediaConfig{Port: 10000, Crypto: &media.Crypto{LocalKey: keyA}}},
		answer: crlf(`
v=0
o=- 1 2 IN IP6 2001:db8::5
s=-
c=IN IP6 2001:db8::5
t=0 0
m=audio 4000 RTP/SAVP 8
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:` + keyAB64 + `|2^31
`),
		want: []media.StreamSpec{{
			Kind: media.KindAudio, Formats: []media.PayloadFormat{pcma},
			Local: ap("192.0.2.10:10000"), Remote: ap("[2001:db8::5]:4000"), RemoteRTCP: ap("[2001:db8::5]:4001"),
			Crypto: &media.Crypto{Suite: "AES_CM_128_HMAC_SHA1_80", LocalKey: keyA, RemoteKey: keyA},
		}},
	},
	{
		name:   "srtp-refused",
		cfg:    OfferConfig{Addr: localAddr, Audio: &MediaConfig{Port: 10000, Crypto: &media.Crypto{}}},
		answer: "v=0\no=- 1 2 IN IP4 203.0.113.5\ns=-\nc=IN IP4 203.0.113.5\nt=0 0\nm=audio 4000 RTP/AVP 8\n",
		err:    ErrNoCommonCodec,
	},
	{
		name: "no-common-codec",
		cfg:  audioOffer(),
		answer: "v=0\no=- 1 2 IN IP4 203.0.113.5\ns=-\nc=IN IP4 203.0.113.5\nt=0 0\nm=audio 4000 RTP/AVP 3 18 101\n" +
			"a=rtpmap:101 telephone-event/8000\n",
		err: ErrNoCommonCodec,
	},
	{
		name:   "all-rejected",
		cfg:    fullOffer(),
		answer: "v=0\no=- 1 2 IN IP4 203.0.113.5\ns=-\nc=IN IP4 203.0.113.5\nt=0 0\nm=audio 0 RTP/AVP 8\nm=video 0 RTP/AVP 96\n",
		err:    ErrNoCommonCodec,
	},
	{
		name:   "no-connection-line",
		cfg:    audioOffer(),
		answer: "v=0\no=- 1 2 IN IP4 203.0.113.5\ns=-\nt=0 0\nm=audio 4000 RTP/AVP 8\n",
		err:    ErrInvalid,
	},
	{
		name:   "not-sdp",
		cfg:    audioOffer(),
		answer: "<html>404</html>",
		err:    ErrInvalid,
	},
	{
		name:   "bad-crypto-key",
		cfg:    OfferConfig{Addr: localAddr, Audio: &MediaConfig{Port: 10000, Crypto: &media.Crypto{}}},
		answer: "v=0\no=- 1 2 IN IP4 203.0.113.5\ns=-\nc=IN IP4 203.0.113.5\nt=0 0\nm=audio 4000 RTP/SAVP 8\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=\n",
		err:    ErrInvalid,
	},
}

// answerCase is a real-world (or real-world shaped) offer, the local
// configuration answering it, and what the answer must negotiate.
type answerCase struct {
	name  string
	offer string
	cfg   OfferConfig
	want  []media.StreamSpec
	// lines must each appear in the answer body; ports are m= ports in
	// order (0 for rejected lines).
	lines []string
	ports []int
	err   error
}

func sipCfg(audioDir, videoDir media.Direction) OfferConfig {
	return OfferConfig{
		Addr:  localAddr,
		Audio: &MediaConfig{Port: 20000, Direction: audioDir},
		Video: &MediaConfig{Port: 20002, Direction: videoDir, Feedback: true},
	}
}

// rtxOfferSDP offers RFC 4588 rtx formats for audio and video.
var rtxOfferSDP = crlf(`
v=0
o=- 4611731400430051336 2 IN IP4 192.168.1.40
s=-
c=IN IP4 192.168.1.40
t=0 0
m=audio 7078 RTP/AVP 111 112
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:112 rtx/48000
a=fmtp:112 apt=111
m=video 9078 RTP/AVP 96 97 102 103 106 107
a=rtpmap:96 VP8/90000
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtcp-fb:96 ccm fir
a=rtpmap:97 rtx/90000
a=fmtp:97 apt=96
a=rtpmap:102 H264/90000
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtcp-fb:102 nack
a=rtpmap:103 rtx/90000
a=fmtp:103 apt=102
a=rtpmap:106 H264/90000
a=fmtp:106 packetization-mode=2
a=rtpmap:107 rtx/90000
a=fmtp:107 apt=106
`)

var answerCases = []answerCase{
	{
		name: "asterisk-offer",
		offer: crlf(`
v=0
o=- 1697043823 1697043823 IN IP4 203.0.113.5
s=Asterisk
c=IN IP4 203.0.113.5
t=0 0
m=audio 14562 RTP/AVP 0 8 3 9 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:3 GSM/8000
a=rtpmap:9 G722/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv
`),
		cfg: sipCfg(media.SendRecv, media.SendRecv),
		want: []media.StreamSpec{{
			Kind: media.KindAudio, Formats: []media.PayloadFormat{pcma, pcmu, te(101, "0-16")},
			Local: ap("192.0.2.10:20000"), Remote: ap("203.0.113.5:14562"), RemoteRTCP: ap("203.0.113.5:14563"),
		}},
		lines: []string{"m=audio 20000 RTP/AVP 8 0 101", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16", "a=ptime:20", "a=sendrecv", "c=IN IP4 192.0.2.10"},
		ports: []int{20000},
	},
	{
		// sipp -sn uac: PCMU only, LF line ends.
		name:  "sipp-uac-default",
		offer: "v=0\no=user1 53655765 2353687637 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 6000 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n",
		cfg:   sipCfg(media.SendRecv, media.SendRecv),
		want: []media.StreamSpec{{
			Kind: media.KindAudio, Formats: []media.PayloadFormat{pcmu},
			Local: ap("192.0.2.10:20000"), Remote: ap("127.0.0.1:6000"), RemoteRTCP: ap("127.0.0.1:6001"),
		}},
		lines: []string{"m=audio 20000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000"},
		ports: []int{20000},
	},
	{
		// Linphone: audio + video, VP8 before H264, mode-0 H264 too, a T.38
		// m=image line (pion/sdp refuses udptl) which must be declined.
		name: "linphone-av-and-t38",
		offer: crlf(`
v=0
o=alice 3355 2264 IN IP4 192.168.1.40
s=Talk
c=IN IP4 192.168.1.40
t=0 0
m=audio 7078 RTP/AVP 96 97 8 0 101
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=rtpmap:101 telephone-event/48000
a=rtcp-mux
m=video 9078 RTP/AVP 100 102 103
a=rtpmap:100 VP8/90000
a=rtpmap:102 H264/90000
a=fmtp:102 profile-level-id=42801F;packetization-mode=0
a=rtpmap:103 H264/90000
a=fmtp:103 profile-level-id=42801F;packetization-mode=1
a=rtcp-fb:* nack pli
a=rtcp-fb:100 ccm fir
m=image 9080 udptl t38
a=T38FaxVersion:0
`),
		cfg: OfferConfig{Addr: localAddr,
			Audio: &MediaConfig{Port: 20000, RTCPMux: true},
			Video: &MediaConfig{Port: 20002, Direction: media.RecvOnly, Feedback: true}},
		want: []media.StreamSpec{{
			Kind: media.KindAudio,
			Formats: []media.PayloadFormat{pcma, pcmu,
				{PayloadType: 96, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2, Fmtp: "useinbandfec=1"},
				{PayloadType: 97, Codec: media.CodecSpeex, ClockRate: 16000},
				{PayloadType: 101, Codec: media.CodecTelephoneEvent, ClockRate: 48000}},
			Local: ap("192.0.2.10:20000"), Remote: ap("192.168.1.40:7078"), RemoteRTCP: ap("192.168.1.40:7078"), RTCPMux: true,
		}, {
			Kind: media.KindVideo,
			Formats: []media.PayloadFormat{
				{PayloadType: 102, Codec: media.CodecH264, ClockRate: 90000, Fmtp: "profile-level-id=42801F;packetization-mode=0"},
				{PayloadType: 103, Codec: media.CodecH264, ClockRate: 90000, Fmtp: "profile-level-id=42801F;packetization-mode=1"},
				{PayloadType: 100, Codec: media.CodecVP8, ClockRate: 90000}},
			Local: ap("192.0.2.10:20002"), Remote: ap("192.168.1.40:9078"), RemoteRTCP: ap("192.168.1.40:9079"),
			Direction: media.RecvOnly, Feedback: media.Feedback{PLI: true, FIR: true},
		}},
		lines: []string{"m=audio 20000 RTP/AVP 8 0 96 97 101", "a=rtcp-mux", "m=video 20002 RTP/AVP 102 103 100",
			"a=rtcp-fb:100 nack pli", "a=rtcp-fb:100 ccm fir", "a=recvonly", "m=image 0 udptl t38"},
		ports: []int{20000, 20002, 0},
	},
	{
		// A WebRTC gateway's plain-RTP offer (Janus-style, from Chrome):
		// VP8 and H.264 each with rtx, H.264 mode 2 with rtx (not
		// accepted, so neither is its rtx), audio rtx (ignored).
		name:  "rtx-offer",
		offer: rtxOfferSDP,
		cfg: OfferConfig{Addr: localAddr,
			Audio: &MediaConfig{Port: 20000, RTX: true},
			Video: &MediaConfig{Port: 20002, Feedback: true, RTX: true}},
		want: []media.StreamSpec{{
			Kind:    media.KindAudio,
			Formats: []media.PayloadFormat{{PayloadType: 111, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2, Fmtp: "minptime=10;useinbandfec=1"}},
			Local:   ap("192.0.2.10:20000"), Remote: ap("192.168.1.40:7078"), RemoteRTCP: ap("192.168.1.40:7079"),
		}, {
			Kind: media.KindVideo,
			Formats: []media.PayloadFormat{h264(102, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"),
				{PayloadType: 96, Codec: media.CodecVP8, ClockRate: 90000}, rtx(103, "apt=102"), rtx(97, "apt=96")},
			Local: ap("192.0.2.10:20002"), Remote: ap("192.168.1.40:9078"), RemoteRTCP: ap("192.168.1.40:9079"),
			Feedback: media.Feedback{NACK: true, PLI: true, FIR: true},
		}},
		lines: []string{"m=audio 20000 RTP/AVP 111", "m=video 20002 RTP/AVP 102 96 103 97",
			"a=rtpmap:103 rtx/90000", "a=fmtp:103 apt=102", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96"},
		ports: []int{20000, 20002},
	},
	{
		// The same offer answered without RTX: no rtx format at all.
		name:  "rtx-offer-refused",
		offer: rtxOfferSDP,
		cfg:   OfferConfig{Addr: localAddr, Video: &MediaConfig{Port: 20002, Codecs: []media.Codec{media.CodecH264}}},
		want: []media.StreamSpec{{
			Kind:    media.KindVideo,
			Formats: []media.PayloadFormat{h264(102, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f")},
			Local:   ap("192.0.2.10:20002"), Remote: ap("192.168.1.40:9078"), RemoteRTCP: ap("192.168.1.40:9079"),
		}},
		lines: []string{"m=audio 0 RTP/AVP 111 112", "m=video 20002 RTP/AVP 102"},
		ports: []int{0, 20002},
	},
	{
		// Hold re-INVITE from a Cisco phone: sendonly.
		name:  "hold-sendonly",
		offer: "v=0\no=Cisco-SIPUA 1 3 IN IP4 10.0.0.9\ns=SIP Call\nc=IN IP4 10.0.0.9\nt=0 0\nm=audio 30000 RTP/AVP 8 101\na=rtpmap:101 telephone-event/8000\na=sendonly\n",
		cfg:   sipCfg(media.SendRecv, media.SendRecv),
		want: []media.StreamSpec{{
			Kind: media.KindAudio, Formats: []media.PayloadFormat{pcma, te(101, "")},
			Local: ap("192.0.2.10:20000"), Remote: ap("10.0.0.9:30000"), RemoteRTCP: ap("10.0.0.9:30001"),
			Direction: media.RecvOnly,
		}},
		lines: []string{"a=recvonly"},
		ports: []int{20000},
	},
	{
		// RFC 2543 hold: c=0.0.0.0, no attribute.
		name:  "hold-zero-address",
		offer: "v=0\no=- 1 3 IN IP4 10.0.0.9\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 30000 RTP/AVP 0\n",
		cfg:   sipCfg(media.SendRecv, media.SendRecv),
		want: []media.StreamSpec{{
			Kind: media.KindAudio, Formats: []media.PayloadFormat{pcmu},
			Local: ap("192.0.2.10:20000"), Remote: ap("0.0.0.0:30000"), RemoteRTCP: ap("0.0.0.0:30001"),
			Direction: media.RecvOnly,
		}},
		lines: []string{"a=recvonly"},
		ports: []int{20000},
	},
	{
		name:  "inactive",
		offer: "v=0\no=- 1 3 IN IP4 10.0.0.9\ns=-\nc=IN IP4 10.0.0.9\nt=0 0\nm=audio 30000 RTP/AVP 0\na=inactive\n",
		cfg:   sipCfg(media.SendRecv, media.SendRecv),
		want: []media.StreamSpec{{
			Kind: media.KindAudio, Formats: []media.PayloadFormat{pcmu},
			Local: ap("192.0.2.10:20000"), Remote: ap("10.0.0.9:30000"), RemoteRTCP: ap("10.0.0.9:30001"),
			Direction: media.Inactive,
		}},
		lines: []string{"a=inactive"},
		ports: []int{20000},
	},
	{
		name: "sdes-offer-two-suites",
		offer: crlf(`
v=0
o=- 1 1 IN IP4 10.0.0.9
s=-
c=IN IP4 10.0.0.9
t=0 0
m=audio 30000 RTP/SAVP 8
a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2|2^31
a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:` + keyAB64 + `|2^31|1:1
`),
		cfg: OfferConfig{Addr: localAddr, Audio: &MediaConfig{Port: 20000, Crypto: &media.Crypto{LocalKey: keyA}}},
		want: []media.StreamSpec{{
			Kind: media.KindAudio, Formats: []media.PayloadFormat{pcma},
			Local: ap("192.0.2.10:20000"), Remote: ap("10.0.0.9:30000"), RemoteRTCP: ap("10.0.0.9:30001"),
			Crypto: &media.Crypto{Suite: "AES_CM_128_HMAC_SHA1_80", LocalKey: keyA, RemoteKey: keyA},
		}},
		lines: []string{"m=audio 20000 RTP/SAVP 8", "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:" + keyAB64},
		ports: []int{20000},
	},
	{
		name:  "sdes-offer-not-configured",
		offer: "v=0\no=- 1 1 IN IP4 10.0.0.9\ns=-\nc=IN IP4 10.0.0.9\nt=0 0\nm=audio 30000 RTP/SAVP 8\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + keyAB64 + "\n",
		cfg:   sipCfg(media.SendRecv, media.SendRecv),
		err:   ErrNoCommonCodec,
	},
	{
		name: "webrtc-dtls-offer",
		offer: crlf(`
v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 0.0.0.0
a=rtpmap:111 opus/48000/2
a=fingerprint:sha-256 AA:BB
a=setup:actpass
`),
		cfg: sipCfg(media.SendRecv, media.SendRecv),
		err: ErrNoCommonCodec,
	},
	{
		name:  "video-only-offer-audio-only-config",
		offer: "v=0\no=- 1 1 IN IP4 10.0.0.9\ns=-\nc=IN IP4 10.0.0.9\nt=0 0\nm=video 30000 RTP/AVP 96\na=rtpmap:96 H264/90000\n",
		cfg:   OfferConfig{Addr: localAddr, Audio: &MediaConfig{Port: 20000}},
		err:   ErrNoCommonCodec,
	},
	{
		name:  "h264-mode2-only",
		offer: "v=0\no=- 1 1 IN IP4 10.0.0.9\ns=-\nc=IN IP4 10.0.0.9\nt=0 0\nm=video 30000 RTP/AVP 96\na=rtpmap:96 H264/90000\na=fmtp:96 packetization-mode=2\n",
		cfg:   sipCfg(media.SendRecv, media.SendRecv),
		err:   ErrNoCommonCodec,
	},
	{
		name:  "garbage",
		offer: "INVITE sip:bob@example.com SIP/2.0\r\n",
		cfg:   sipCfg(media.SendRecv, media.SendRecv),
		err:   ErrInvalid,
	},
}
