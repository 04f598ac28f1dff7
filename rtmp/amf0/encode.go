package amf0

import (
	"encoding/binary"
	"math"
)

// Append appends the AMF0 encoding of each value to b. It returns
// ErrUnsupported (wrapped) for a Go type with no AMF0 form; b is then
// returned unchanged.
func Append(b []byte, values ...any) ([]byte, error) {
	orig := len(b)
	var err error
	for _, v := range values {
		if b, err = appendValue(b, v, 0); err != nil {
			return b[:orig], err
		}
	}
	return b, nil
}

// Marshal returns the AMF0 encoding of values, one after the other, as an
// RTMP command or FLV script tag body carries them.
func Marshal(values ...any) ([]byte, error) { return Append(nil, values...) }

// AppendNumber appends an AMF0 number without boxing it in an interface.
func AppendNumber(b []byte, n float64) []byte {
	b = append(b, MarkerNumber)
	return binary.BigEndian.AppendUint64(b, math.Float64bits(n))
}

// AppendString appends an AMF0 string (a long string if it needs one).
func AppendString(b []byte, s string) []byte {
	if len(s) > 0xffff {
		b = append(b, MarkerLongString)
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		return append(b, s...)
	}
	b = append(b, MarkerString)
	return appendKey(b, s)
}

func appendKey(b []byte, s string) []byte {
	if len(s) > 0xffff {
		s = s[:0xffff]
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendProps(b []byte, ps []Property, depth int) ([]byte, error) {
	var err error
	for _, p := range ps {
		b = appendKey(b, p.Key)
		if b, err = appendValue(b, p.Value, depth+1); err != nil {
			return b, err
		}
	}
	return append(b, 0, 0, MarkerObjectEnd), nil
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return b, errorf(ErrInvalid, "nesting deeper than %d", MaxDepth)
	}
	switch v := v.(type) {
	case nil:
		return append(b, MarkerNull), nil
	case Undefined:
		return append(b, MarkerUndefined), nil
	case bool:
		if v {
			return append(b, MarkerBoolean, 1), nil
		}
		return append(b, MarkerBoolean, 0), nil
	case float64:
		return AppendNumber(b, v), nil
	case float32:
		return AppendNumber(b, float64(v)), nil
	case int:
		return AppendNumber(b, float64(v)), nil
	case int8:
		return AppendNumber(b, float64(v)), nil
	case int16:
		return AppendNumber(b, float64(v)), nil
	case int32:
		return AppendNumber(b, float64(v)), nil
	case int64:
		return AppendNumber(b, float64(v)), nil
	case uint:
		return AppendNumber(b, float64(v)), nil
	case uint8:
		return AppendNumber(b, float64(v)), nil
	case uint16:
		return AppendNumber(b, float64(v)), nil
	case uint32:
		return AppendNumber(b, float64(v)), nil
	case uint64:
		return AppendNumber(b, float64(v)), nil
	case string:
		return AppendString(b, v), nil
	case Object:
		return appendProps(append(b, MarkerObject), v, depth)
	case ECMAArray:
		b = append(b, MarkerECMAArray)
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		return appendProps(b, v, depth)
	case []any:
		b = append(b, MarkerStrictArray)
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		var err error
		for _, e := range v {
			if b, err = appendValue(b, e, depth+1); err != nil {
				return b, err
			}
		}
		return b, nil
	case Date:
		b = append(b, MarkerDate)
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(v.Millis))
		return binary.BigEndian.AppendUint16(b, uint16(v.TimeZone)), nil
	default:
		return b, errorf(ErrUnsupported, "Go type %T", v)
	}
}
