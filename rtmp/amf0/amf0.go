// Package amf0 encodes and decodes Action Message Format version 0, the
// serialization RTMP uses for commands (connect, publish, onStatus) and FLV
// uses for script data (onMetaData).
//
// Values map to Go types as follows:
//
//	AMF0 number        float64 (Encode also accepts every Go integer type and float32)
//	AMF0 boolean       bool
//	AMF0 string        string (long strings are decoded to string too)
//	AMF0 object        Object
//	AMF0 ECMA array    ECMAArray
//	AMF0 strict array  []any
//	AMF0 null          nil
//	AMF0 undefined     Undefined{}
//	AMF0 date          Date
//
// References, typed objects, XML documents, movie clips and the switch to
// AMF3 are rejected with ErrUnsupported. The decoder never panics, never
// allocates more than a small multiple of its input (and never more than
// MaxValues values per call), and limits nesting to MaxDepth levels.
//
// Specification: Adobe, "Action Message Format -- AMF 0" (December 2007).
package amf0

import (
	"errors"
	"fmt"
)

// Type markers (AMF 0 specification, section 2.1).
const (
	MarkerNumber      = 0x00
	MarkerBoolean     = 0x01
	MarkerString      = 0x02
	MarkerObject      = 0x03
	MarkerMovieClip   = 0x04
	MarkerNull        = 0x05
	MarkerUndefined   = 0x06
	MarkerReference   = 0x07
	MarkerECMAArray   = 0x08
	MarkerObjectEnd   = 0x09
	MarkerStrictArray = 0x0a
	MarkerDate        = 0x0b
	MarkerLongString  = 0x0c
	MarkerUnsupported = 0x0d
	MarkerRecordSet   = 0x0e
	MarkerXMLDocument = 0x0f
	MarkerTypedObject = 0x10
	MarkerAVMPlus     = 0x11
)

// MaxDepth is how deeply objects and arrays may nest in decoded input.
const MaxDepth = 32

// MaxValues is how many values (every number, string, null, property
// value and array element counts) one Decode or DecodeAll call decodes
// before it fails with ErrInvalid. Each costs 16 to 48 bytes besides its
// string bytes, so a call holds at most about 1.5 MiB plus the input's
// size, whatever the input says. RTMP commands and onMetaData hold tens.
const MaxValues = 1 << 15

// Errors returned by the decoder and encoder.
var (
	// ErrTruncated means the input ended inside a value.
	ErrTruncated = errors.New("amf0: truncated input")
	// ErrUnsupported means a valid but unsupported marker (reference,
	// typed object, AMF3 switch, ...).
	ErrUnsupported = errors.New("amf0: unsupported type")
	// ErrInvalid means malformed input: unknown marker, nesting too deep,
	// a misplaced object-end marker.
	ErrInvalid = errors.New("amf0: invalid input")
)

// Property is one key/value pair of an Object or ECMAArray.
type Property struct {
	// Key is the property name (at most 65535 bytes on the wire).
	Key string
	// Value is any value Encode accepts (see the package comment).
	Value any
}

// Object is an anonymous AMF0 object: its properties in wire order.
type Object []Property

// ECMAArray is an AMF0 ECMA (associative) array, what onMetaData carries:
// its properties in wire order.
type ECMAArray []Property

// Undefined is the AMF0 undefined value.
type Undefined struct{}

// Date is an AMF0 date: milliseconds since the Unix epoch (UTC) and a
// time-zone offset in minutes that the specification says to ignore.
type Date struct {
	// Millis is milliseconds since 1970-01-01 UTC.
	Millis float64
	// TimeZone is the offset in minutes; writers send 0.
	TimeZone int16
}

// Get returns the value of the first property named key, or nil.
func (o Object) Get(key string) any { return get(o, key) }

// String returns the string value of property key, and whether it is a string.
func (o Object) String(key string) (string, bool) {
	s, ok := get(o, key).(string)
	return s, ok
}

// Number returns the number value of property key, and whether it is a number.
func (o Object) Number(key string) (float64, bool) {
	n, ok := get(o, key).(float64)
	return n, ok
}

// Get returns the value of the first property named key, or nil.
func (a ECMAArray) Get(key string) any { return get(a, key) }

// Number returns the number value of property key, and whether it is a number.
func (a ECMAArray) Number(key string) (float64, bool) {
	n, ok := get(a, key).(float64)
	return n, ok
}

func get(ps []Property, key string) any {
	for _, p := range ps {
		if p.Key == key {
			return p.Value
		}
	}
	return nil
}

// Properties returns the properties of an Object or ECMAArray value, and
// whether v is one of them. RTMP peers use the two interchangeably (some send
// the command object of connect or onStatus as an ECMA array).
func Properties(v any) ([]Property, bool) {
	switch o := v.(type) {
	case Object:
		return o, true
	case ECMAArray:
		return o, true
	}
	return nil, false
}

func errorf(base error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{base}, args...)...)
}
