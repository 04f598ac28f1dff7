package wcsapi

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
)

func TestStartupSRTPField(t *testing.T) {
	for body, want := range map[string]callmgr.SRTPMode{
		`{"callId":"a","callee":"b@h"}`:                   callmgr.SRTPDefault,
		`{"callId":"a","callee":"b@h","srtp":"optional"}`: callmgr.SRTPOptional,
		`{"callId":"a","callee":"b@h","srtp":"REQUIRED"}`: callmgr.SRTPRequired,
		`{"callId":"a","callee":"b@h","srtp":true}`:       callmgr.SRTPRequired,
		`{"callId":"a","callee":"b@h","srtp":"false"}`:    callmgr.SRTPOff,
		`{"callId":"a","callee":"b@h","srtp":"off"}`:      callmgr.SRTPOff,
		`{"callId":"a","callee":"b@h","srtp":null}`:       callmgr.SRTPDefault,
		`{"callId":"a","callee":"b@h","srtp":""}`:         callmgr.SRTPDefault,
		`{"callId":"a","callee":"b@h","srtp":1}`:          callmgr.SRTPRequired,
	} {
		var r startupRequest
		require.NoError(t, json.Unmarshal([]byte(body), &r), body)
		p, err := r.validate()
		require.NoError(t, err, body)
		assert.Equal(t, want, p.SRTP, body)
	}
	var r startupRequest
	require.NoError(t, json.Unmarshal([]byte(`{"callId":"a","callee":"b@h","srtp":"sometimes"}`), &r))
	_, err := r.validate()
	var fe *fieldError
	require.True(t, errors.As(err, &fe), "%v", err)
	assert.Equal(t, "srtp", fe.Field)
}

// callmgr's ParamErrors name Go fields; the REST API answers with its own.
func TestRESTFieldNames(t *testing.T) {
	for goName, want := range map[string]string{
		callmgr.FieldCallID: "callId", callmgr.FieldCallee: "callee", callmgr.FieldToStream: "toStream",
		callmgr.FieldRTMPURL: "rtmpUrl", callmgr.FieldRTMPStream: "rtmpStream", callmgr.FieldSIPLogin: "sipLogin",
		callmgr.FieldSIPAuthName: "sipAuthenticationName", callmgr.FieldSIPPassword: "sipPassword",
		callmgr.FieldSIPDomain: "sipDomain", callmgr.FieldSIPOutboundProxy: "sipOutboundProxy",
		callmgr.FieldSIPPort: "sipPort", callmgr.FieldSIPTransport: "sipTransport",
		callmgr.FieldSIPRegisterRequired: "sipRegisterRequired", callmgr.FieldVisibleName: "visibleName",
		callmgr.FieldAppKey: "appKey", callmgr.FieldHeaders: "sipHeaders", callmgr.FieldRecord: "record",
		callmgr.FieldSRTP: "srtp",
	} {
		err := mapErr(&callmgr.ParamError{Field: goName, Reason: "bad"})
		var fe *fieldError
		require.True(t, errors.As(err, &fe), "%v", err)
		assert.Equal(t, want, fe.Field, goName)
	}
}
