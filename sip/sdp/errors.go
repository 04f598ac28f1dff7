package sdp

import "errors"

// ErrInvalid is wrapped by the errors for SDP that cannot be parsed or breaks
// the offer/answer rules (no c= for a stream, an answer without m= lines, a
// malformed a=crypto key). A SIP user agent answers 400 Bad Request or 488 Not
// Acceptable Here.
var ErrInvalid = errors.New("sdp: invalid session description")

// ErrNoCommonCodec is wrapped by the errors for an exchange that leaves no
// usable stream: every m= line rejected (port 0), no payload format in common,
// or SRTP required by one side and refused by the other. The wrapping error
// says why for each stream. A SIP user agent maps it to 488 Not Acceptable
// Here (RFC 3261 §21.4.26).
var ErrNoCommonCodec = errors.New("sdp: no common codec")

// ErrConfig is wrapped by the errors NewOffer and Answer return for an
// unusable OfferConfig (no address, a port out of range, a codec of the wrong
// kind, a crypto key of the wrong length).
var ErrConfig = errors.New("sdp: invalid configuration")
