package siptest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestReferReplaces(t *testing.T) {
	for in, want := range map[string]string{
		"<sip:carol@pbx.example>": "",
		"<sip:carol@pbx.example?Replaces=abc%40host%3Bto-tag%3D1%3Bfrom-tag%3D2>":             "abc@host;to-tag=1;from-tag=2",
		" <sip:carol@pbx.example;transport=tcp?X-A=1&replaces=a%3Bto-tag%3Dx%3Bfrom-tag%3Dy>": "a;to-tag=x;from-tag=y",
		"sip:carol@pbx.example?Replaces=bad%zz":                                               "",
		"<sip:carol@pbx.example?Replaces":                                                     "",
	} {
		assert.Equal(t, want, referReplaces(in), in)
	}
}

func TestSDPDirections(t *testing.T) {
	r := Request{Body: []byte("v=0\r\na=sendonly\r\nm=audio 1 RTP/AVP 0\r\nm=video 2 RTP/AVP 96\r\na=inactive\r\nm=audio 3 RTP/AVP 8\r\na=recvonly\r\n")}
	assert.Equal(t, []string{"sendonly", "inactive", "recvonly"}, r.SDPDirections())
	r = Request{Body: []byte("v=0\nm=audio 1 RTP/AVP 0\n")}
	assert.Equal(t, []string{"sendrecv"}, r.SDPDirections())
	assert.Nil(t, (&Request{}).SDPDirections())
}
