package amf0

import (
	"encoding/binary"
	"math"
)

// Decode decodes one value from the front of b and returns it with the
// number of bytes it took.
func Decode(b []byte) (v any, n int, err error) {
	d := decoder{b: b}
	v, err = d.value(0)
	return v, d.off, err
}

// DecodeAll decodes every value in b, as found in an RTMP command message or
// an FLV script tag. On error it returns the values decoded so far.
func DecodeAll(b []byte) ([]any, error) {
	d := decoder{b: b}
	var vals []any
	for d.off < len(b) {
		v, err := d.value(0)
		if err != nil {
			return vals, err
		}
		vals = append(vals, v)
	}
	return vals, nil
}

type decoder struct {
	b      []byte
	off    int
	values int // decoded so far, against MaxValues
}

func (d *decoder) need(n int) error {
	if n < 0 || len(d.b)-d.off < n {
		return ErrTruncated
	}
	return nil
}

func (d *decoder) u8() (byte, error) {
	if err := d.need(1); err != nil {
		return 0, err
	}
	d.off++
	return d.b[d.off-1], nil
}

func (d *decoder) u16() (uint16, error) {
	if err := d.need(2); err != nil {
		return 0, err
	}
	d.off += 2
	return binary.BigEndian.Uint16(d.b[d.off-2:]), nil
}

func (d *decoder) u32() (uint32, error) {
	if err := d.need(4); err != nil {
		return 0, err
	}
	d.off += 4
	return binary.BigEndian.Uint32(d.b[d.off-4:]), nil
}

func (d *decoder) f64() (float64, error) {
	if err := d.need(8); err != nil {
		return 0, err
	}
	d.off += 8
	return math.Float64frombits(binary.BigEndian.Uint64(d.b[d.off-8:])), nil
}

func (d *decoder) str(n int) (string, error) {
	if err := d.need(n); err != nil {
		return "", err
	}
	d.off += n
	return string(d.b[d.off-n : d.off]), nil
}

func (d *decoder) key() (string, error) {
	n, err := d.u16()
	if err != nil {
		return "", err
	}
	return d.str(int(n))
}

// props decodes key/value pairs up to the object-end marker (an empty key
// followed by 0x09).
func (d *decoder) props(depth int) ([]Property, error) {
	var ps []Property
	for {
		k, err := d.key()
		if err != nil {
			return ps, err
		}
		if k == "" && d.off < len(d.b) && d.b[d.off] == MarkerObjectEnd {
			d.off++
			return ps, nil
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return ps, err
		}
		ps = append(ps, Property{Key: k, Value: v})
	}
}

func (d *decoder) value(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, errorf(ErrInvalid, "nesting deeper than %d", MaxDepth)
	}
	m, err := d.u8()
	if err != nil {
		return nil, err
	}
	// A value costs up to 16 bytes (an interface) or 32 (a property) for
	// one byte of input: count them, so a message of nulls cannot cost
	// sixteen times its size.
	d.values++
	if d.values > MaxValues {
		return nil, errorf(ErrInvalid, "more than %d values", MaxValues)
	}
	switch m {
	case MarkerNumber:
		return d.f64()
	case MarkerBoolean:
		b, err := d.u8()
		return b != 0, err
	case MarkerString:
		return d.key()
	case MarkerLongString, MarkerXMLDocument:
		if m == MarkerXMLDocument {
			return nil, errorf(ErrUnsupported, "marker 0x%02x", m)
		}
		n, err := d.u32()
		if err != nil {
			return nil, err
		}
		if n > math.MaxInt32 {
			return nil, ErrTruncated
		}
		return d.str(int(n))
	case MarkerObject:
		ps, err := d.props(depth)
		return Object(ps), err
	case MarkerECMAArray:
		// The count is a hint only (encoders get it wrong): decode up to
		// the object-end marker.
		if _, err := d.u32(); err != nil {
			return nil, err
		}
		ps, err := d.props(depth)
		return ECMAArray(ps), err
	case MarkerStrictArray:
		n, err := d.u32()
		if err != nil {
			return nil, err
		}
		// Every element takes at least one byte: a count larger than the
		// remaining input is a lie, reject it before allocating.
		if int64(n) > int64(len(d.b)-d.off) {
			return nil, ErrTruncated
		}
		if int64(n) > int64(MaxValues-d.values) {
			return nil, errorf(ErrInvalid, "strict array of %d elements: more than %d values", n, MaxValues)
		}
		arr := make([]any, 0, n)
		for i := uint32(0); i < n; i++ {
			v, err := d.value(depth + 1)
			if err != nil {
				return arr, err
			}
			arr = append(arr, v)
		}
		return arr, nil
	case MarkerNull:
		return nil, nil
	case MarkerUndefined, MarkerUnsupported:
		return Undefined{}, nil
	case MarkerDate:
		ms, err := d.f64()
		if err != nil {
			return nil, err
		}
		tz, err := d.u16()
		return Date{Millis: ms, TimeZone: int16(tz)}, err
	case MarkerObjectEnd:
		return nil, errorf(ErrInvalid, "object end outside an object")
	case MarkerMovieClip, MarkerReference, MarkerRecordSet, MarkerTypedObject, MarkerAVMPlus:
		return nil, errorf(ErrUnsupported, "marker 0x%02x", m)
	default:
		return nil, errorf(ErrInvalid, "unknown marker 0x%02x", m)
	}
}
