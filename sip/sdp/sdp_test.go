package sdp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
)

func TestNegotiateGolden(t *testing.T) {
	for _, tc := range negotiateCases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := NewOffer(tc.cfg)
			require.NoError(t, err)
			got, err := o.Negotiate([]byte(tc.answer))
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			// The generated key of an offer without one is random.
			for i := range got {
				if got[i].Crypto != nil && tc.cfg.Audio.Crypto.LocalKey == nil {
					got[i].Crypto.LocalKey = nil
				}
			}
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestAnswerGolden(t *testing.T) {
	for _, tc := range answerCases {
		t.Run(tc.name, func(t *testing.T) {
			body, got, err := Answer([]byte(tc.offer), tc.cfg)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				assert.Nil(t, body)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			text := string(body)
			for _, l := range tc.lines {
				assert.Contains(t, text, l+"\r\n")
			}
			s, err := parse(body)
			require.NoError(t, err)
			var ports []int
			for _, m := range s.media {
				ports = append(ports, m.port)
			}
			assert.Equal(t, tc.ports, ports)
		})
	}
}

func TestOfferDefaults(t *testing.T) {
	o, err := NewOffer(OfferConfig{
		Addr:           localAddr,
		Audio:          &MediaConfig{Port: 10000},
		Video:          &MediaConfig{Port: 10002, Direction: media.RecvOnly, RTCPMux: true, Feedback: true},
		SessionID:      42,
		SessionVersion: 7,
	})
	require.NoError(t, err)
	want := crlf(`
v=0
o=- 42 7 IN IP4 192.0.2.10
s=sipstream
c=IN IP4 192.0.2.10
t=0 0
m=audio 10000 RTP/AVP 8 0 111 99 98 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:99 speex/16000
a=rtpmap:98 speex/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=rtcp:10001
a=sendrecv
m=video 10002 RTP/AVP 96 97
a=rtpmap:96 H264/90000
a=fmtp:96 profile-level-id=42e01f;packetization-mode=1
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtcp-fb:96 ccm fir
a=rtpmap:97 VP8/90000
a=rtcp-fb:97 nack
a=rtcp-fb:97 nack pli
a=rtcp-fb:97 ccm fir
a=rtcp:10003
a=rtcp-mux
a=recvonly
`)
	assert.Equal(t, want, string(o.Marshal()))
}

func TestOfferCryptoAndCodecs(t *testing.T) {
	o, err := NewOffer(OfferConfig{
		Addr:        netip.MustParseAddr("2001:db8::1"),
		SessionName: "line\r\nbreak",
		Audio:       &MediaConfig{Port: 10000, Codecs: []media.Codec{media.CodecPCMU}, NoDTMF: true, Crypto: &media.Crypto{}},
	})
	require.NoError(t, err)
	text := string(o.Marshal())
	assert.Contains(t, text, "c=IN IP6 2001:db8::1\r\n")
	assert.Contains(t, text, "s=line  break\r\n")
	assert.Contains(t, text, "m=audio 10000 RTP/SAVP 0\r\n")
	assert.Contains(t, text, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")
	assert.NotContains(t, text, "telephone-event")

	// The peer echoing our own offer back as its answer gives our key as
	// both keys: enough to check the key round trip.
	specs, err := o.Negotiate(o.Marshal())
	require.NoError(t, err)
	require.Len(t, specs, 1)
	require.NotNil(t, specs[0].Crypto)
	assert.Len(t, specs[0].Crypto.LocalKey, 30)
	assert.Equal(t, specs[0].Crypto.LocalKey, specs[0].Crypto.RemoteKey)
}

func TestOfferConfigErrors(t *testing.T) {
	for name, cfg := range map[string]OfferConfig{
		"no address":   {Audio: &MediaConfig{Port: 1000}},
		"no media":     {Addr: localAddr},
		"port":         {Addr: localAddr, Audio: &MediaConfig{Port: 70000}},
		"wrong kind":   {Addr: localAddr, Audio: &MediaConfig{Port: 1000, Codecs: []media.Codec{media.CodecH264}}},
		"aac":          {Addr: localAddr, Audio: &MediaConfig{Port: 1000, Codecs: []media.Codec{media.CodecAAC}}},
		"empty codecs": {Addr: localAddr, Video: &MediaConfig{Port: 1000, Codecs: []media.Codec{}}},
		"key length":   {Addr: localAddr, Audio: &MediaConfig{Port: 1000, Crypto: &media.Crypto{LocalKey: []byte{1, 2}}}},
		"suite":        {Addr: localAddr, Audio: &MediaConfig{Port: 1000, Crypto: &media.Crypto{Suite: "NULL"}}},
		"direction":    {Addr: localAddr, Audio: &MediaConfig{Port: 1000, Direction: 9}},
	} {
		_, err := NewOffer(cfg)
		assert.ErrorIs(t, err, ErrConfig, name)
	}
}

// TestRoundTrip offers, answers with Answer and negotiates the answer: both
// sides must agree on codecs, addresses and directions.
func TestRoundTrip(t *testing.T) {
	peer := netip.MustParseAddr("198.51.100.1")
	for _, dir := range []media.Direction{media.SendRecv, media.RecvOnly, media.SendOnly, media.Inactive} {
		t.Run(dir.String(), func(t *testing.T) {
			o, err := NewOffer(OfferConfig{Addr: localAddr,
				Audio: &MediaConfig{Port: 10000, Direction: dir, RTCPMux: true, Crypto: &media.Crypto{}},
				Video: &MediaConfig{Port: 10002, Direction: dir, Feedback: true}})
			require.NoError(t, err)
			ans, peerSpecs, err := Answer(o.Marshal(), OfferConfig{Addr: peer,
				Audio: &MediaConfig{Port: 30000, Codecs: []media.Codec{media.CodecPCMU, media.CodecPCMA}, RTCPMux: true, Crypto: &media.Crypto{}},
				Video: &MediaConfig{Port: 30002, Codecs: []media.Codec{media.CodecVP8}, Feedback: true}})
			require.NoError(t, err)
			specs, err := o.Negotiate(ans)
			require.NoError(t, err)
			require.Len(t, specs, 2)
			require.Len(t, peerSpecs, 2)
			for i := range specs {
				assert.Equal(t, peerSpecs[i].Formats, specs[i].Formats)
				assert.Equal(t, peerSpecs[i].Local, specs[i].Remote)
				assert.Equal(t, peerSpecs[i].Remote, specs[i].Local)
				assert.Equal(t, dir, specs[i].Direction)
				assert.Equal(t, dir.Sends(), peerSpecs[i].Direction.Receives())
				assert.Equal(t, dir.Receives(), peerSpecs[i].Direction.Sends())
			}
			assert.Equal(t, media.CodecPCMU, specs[0].Formats[0].Codec)
			assert.Equal(t, media.CodecTelephoneEvent, specs[0].Formats[2].Codec)
			assert.True(t, specs[0].RTCPMux)
			assert.Equal(t, specs[0].Crypto.LocalKey, peerSpecs[0].Crypto.RemoteKey)
			assert.Equal(t, specs[0].Crypto.RemoteKey, peerSpecs[0].Crypto.LocalKey)
			assert.Equal(t, media.CodecVP8, specs[1].Formats[0].Codec)
			assert.Equal(t, media.Feedback{NACK: true, PLI: true, FIR: true}, specs[1].Feedback)
		})
	}
}

func TestErrorsCarryReasons(t *testing.T) {
	o, err := NewOffer(fullOffer())
	require.NoError(t, err)
	_, err = o.Negotiate([]byte("v=0\nc=IN IP4 1.2.3.4\nm=audio 0 RTP/AVP 8\nm=video 5000 RTP/AVP 34\n"))
	require.ErrorIs(t, err, ErrNoCommonCodec)
	assert.Contains(t, err.Error(), "audio: rejected (port 0)")
	assert.Contains(t, err.Error(), "video: no codec in common")
	assert.False(t, errors.Is(err, ErrInvalid))
}

func TestSecretsNotInErrors(t *testing.T) {
	o, err := NewOffer(OfferConfig{Addr: localAddr, Audio: &MediaConfig{Port: 10000, Crypto: &media.Crypto{}}})
	require.NoError(t, err)
	secret := "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"
	_, err = o.Negotiate([]byte("v=0\nc=IN IP4 1.2.3.4\nm=audio 4000 RTP/SAVP 8\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + secret + "\n"))
	require.ErrorIs(t, err, ErrInvalid)
	assert.NotContains(t, err.Error(), secret)
}

func TestParseLimits(t *testing.T) {
	_, err := parse([]byte("v=0\n" + strings.Repeat("a=x\n", MaxSize)))
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = parse([]byte("v=0\n" + strings.Repeat("m=audio 1 RTP/AVP 0\n", maxMedia+1)))
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = parse([]byte("v=0\nm=audio 70000 RTP/AVP 0\n"))
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = parse([]byte("v=0\nc=IN IP4 example.com\n"))
	assert.ErrorIs(t, err, ErrInvalid)
}

func TestOfferRTX(t *testing.T) {
	o, err := NewOffer(OfferConfig{
		Addr:  localAddr,
		Audio: &MediaConfig{Port: 10000, RTX: true},
		Video: &MediaConfig{Port: 10002, Feedback: true, RTX: true},
	})
	require.NoError(t, err)
	text := string(o.Marshal())
	for _, l := range []string{"m=audio 10000 RTP/AVP 8 0 111 99 98 101", "m=video 10002 RTP/AVP 96 97 102 103",
		"a=rtpmap:102 rtx/90000", "a=fmtp:102 apt=96", "a=rtpmap:103 rtx/90000", "a=fmtp:103 apt=97"} {
		assert.Contains(t, text, l+"\r\n")
	}
	assert.NotContains(t, text, "a=rtcp-fb:102")
	assert.NotContains(t, text, "a=rtcp-fb:103")
	assert.Equal(t, 2, strings.Count(text, "rtx/"), "no audio rtx")

	// Only the codecs offered get an rtx format.
	o, err = NewOffer(OfferConfig{Addr: localAddr, Video: &MediaConfig{Port: 10002, Codecs: []media.Codec{media.CodecVP8}, RTX: true}})
	require.NoError(t, err)
	text = string(o.Marshal())
	assert.Contains(t, text, "m=video 10002 RTP/AVP 97 103\r\n")
	assert.Contains(t, text, "a=fmtp:103 apt=97\r\n")

	// CodecRTX is not a codec one can list: RTX is the switch.
	_, err = NewOffer(OfferConfig{Addr: localAddr, Video: &MediaConfig{Port: 10002, Codecs: []media.Codec{media.CodecH264, media.CodecRTX}}})
	assert.ErrorIs(t, err, ErrConfig)
}

// TestRoundTripRTX: both sides with RTX agree on an rtx format per video
// codec, after the codecs; one side without RTX means none.
func TestRoundTripRTX(t *testing.T) {
	peer := netip.MustParseAddr("198.51.100.1")
	for _, answerRTX := range []bool{true, false} {
		o, err := NewOffer(OfferConfig{Addr: localAddr, Video: &MediaConfig{Port: 10002, Feedback: true, RTX: true}})
		require.NoError(t, err)
		ans, peerSpecs, err := Answer(o.Marshal(), OfferConfig{Addr: peer,
			Video: &MediaConfig{Port: 30002, Feedback: true, RTX: answerRTX}})
		require.NoError(t, err)
		specs, err := o.Negotiate(ans)
		require.NoError(t, err)
		require.Len(t, specs, 1)
		assert.Equal(t, peerSpecs[0].Formats, specs[0].Formats)
		want := []media.PayloadFormat{h264(96, h264Fmtp), {PayloadType: 97, Codec: media.CodecVP8, ClockRate: 90000}}
		if answerRTX {
			want = append(want, rtx(102, "apt=96"), rtx(103, "apt=97"))
		}
		assert.Equal(t, want, specs[0].Formats, "answer RTX %v", answerRTX)
	}
}
