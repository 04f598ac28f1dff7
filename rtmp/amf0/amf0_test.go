package amf0

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func hexb(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// cases is the golden table: values and their exact wire form. It drives
// the encode test, the decode test and the fuzz seeds.
var cases = []struct {
	name string
	vals []any
	wire []byte
}{
	{"number", []any{1.5}, []byte{0x00, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}},
	{"booleans", []any{true, false}, []byte{0x01, 0x01, 0x01, 0x00}},
	{"string", []any{"connect"}, hexb([]byte{0x02, 0x00, 0x07}, []byte("connect"))},
	{"null and undefined", []any{nil, Undefined{}}, []byte{0x05, 0x06}},
	{"connect command", []any{"connect", 1.0, Object{{"app", "live"}, {"type", "nonprivate"}}},
		hexb([]byte{0x02, 0x00, 0x07}, []byte("connect"),
			[]byte{0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0},
			[]byte{0x03, 0x00, 0x03}, []byte("app"), []byte{0x02, 0x00, 0x04}, []byte("live"),
			[]byte{0x00, 0x04}, []byte("type"), []byte{0x02, 0x00, 0x0a}, []byte("nonprivate"),
			[]byte{0x00, 0x00, 0x09})},
	{"ecma array", []any{ECMAArray{{"width", 320.0}}},
		hexb([]byte{0x08, 0, 0, 0, 1, 0x00, 0x05}, []byte("width"),
			[]byte{0x00, 0x40, 0x74, 0, 0, 0, 0, 0, 0}, []byte{0, 0, 0x09})},
	{"strict array", []any{[]any{2.0, "a"}},
		[]byte{0x0a, 0, 0, 0, 2, 0x00, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0x01, 'a'}},
	{"date", []any{Date{Millis: 1000, TimeZone: -60}},
		[]byte{0x0b, 0x40, 0x8f, 0x40, 0, 0, 0, 0, 0, 0xff, 0xc4}},
	{"nested", []any{Object{{"o", Object{{"n", nil}}}}},
		[]byte{0x03, 0x00, 0x01, 'o', 0x03, 0x00, 0x01, 'n', 0x05, 0, 0, 9, 0, 0, 9}},
}

func TestEncode(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Marshal(c.vals...)
			require.NoError(t, err)
			require.Equal(t, c.wire, b)
		})
	}
}

func TestDecode(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vals, err := DecodeAll(c.wire)
			require.NoError(t, err)
			require.Equal(t, c.vals, vals)
		})
	}
}

func TestEncodeIntegersAndLongString(t *testing.T) {
	b, err := Marshal(int(3), uint32(4), int64(-5), float32(0.5))
	require.NoError(t, err)
	vals, err := DecodeAll(b)
	require.NoError(t, err)
	require.Equal(t, []any{3.0, 4.0, -5.0, 0.5}, vals)

	long := strings.Repeat("x", 70000)
	b, err = Marshal(long)
	require.NoError(t, err)
	require.Equal(t, byte(MarkerLongString), b[0])
	v, n, err := Decode(b)
	require.NoError(t, err)
	require.Equal(t, long, v)
	require.Equal(t, len(b), n)

	_, err = Marshal(struct{}{})
	require.ErrorIs(t, err, ErrUnsupported)
}

func TestDecodeErrors(t *testing.T) {
	for name, c := range map[string]struct {
		in  []byte
		err error
	}{
		"empty":             {nil, ErrTruncated},
		"short number":      {[]byte{0x00, 1, 2}, ErrTruncated},
		"short string":      {[]byte{0x02, 0x00, 0x05, 'a'}, ErrTruncated},
		"huge long string":  {[]byte{0x0c, 0xff, 0xff, 0xff, 0xff}, ErrTruncated},
		"lying strict arr":  {[]byte{0x0a, 0x7f, 0xff, 0xff, 0xff, 0x05}, ErrTruncated},
		"unterminated obj":  {[]byte{0x03, 0x00, 0x01, 'a', 0x05}, ErrTruncated},
		"reference":         {[]byte{0x07, 0x00, 0x01}, ErrUnsupported},
		"amf3 switch":       {[]byte{0x11, 0x01}, ErrUnsupported},
		"unknown marker":    {[]byte{0x42}, ErrInvalid},
		"stray object end":  {[]byte{0x09}, ErrInvalid},
		"deep nesting":      {bytes.Repeat([]byte{0x0a, 0, 0, 0, 1}, 100), ErrInvalid},
		"deep object":       {append([]byte{0x03}, bytes.Repeat([]byte{0x00, 0x01, 'k', 0x03}, 100)...), ErrInvalid},
		"date without zone": {[]byte{0x0b, 0, 0, 0, 0, 0, 0, 0, 0}, ErrTruncated},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := Decode(c.in)
			require.True(t, errors.Is(err, c.err), "got %v, want %v", err, c.err)
		})
	}
}

// nullArray is a strict array of n nulls, claiming count elements.
func nullArray(count uint32, n int) []byte {
	b := []byte{MarkerStrictArray, byte(count >> 24), byte(count >> 16), byte(count >> 8), byte(count)}
	return append(b, bytes.Repeat([]byte{MarkerNull}, n)...)
}

// manyProps is an ECMA array of n one-letter properties holding null.
func manyProps(n int) []byte {
	b := []byte{MarkerECMAArray, 0, 0, 0, 0}
	b = append(b, bytes.Repeat([]byte{0x00, 0x01, 'k', MarkerNull}, n)...)
	return append(b, 0x00, 0x00, MarkerObjectEnd)
}

// TestDecodeAllocationBounded: a strict array of nulls cost 16 bytes of
// memory per byte of input (a 15 MiB message, 256 MiB). Decoding is now
// capped at MaxValues values whatever the input.
func TestDecodeAllocationBounded(t *testing.T) {
	for name, in := range map[string][]byte{
		"strict array of nulls":   nullArray(1<<20, 1<<20),
		"top-level nulls":         bytes.Repeat([]byte{MarkerNull}, 1<<20),
		"8 MiB of nulls":          nullArray(8<<20, 8<<20),
		"ecma array of nulls":     manyProps(1 << 18),
		"nested arrays of nulls":  append(nullArray(2, 0), append(nullArray(MaxValues/2, MaxValues/2), nullArray(MaxValues/2, MaxValues/2)...)...),
		"array at the value cap":  nullArray(MaxValues, MaxValues),
		"array count over budget": nullArray(MaxValues+10, MaxValues+10),
	} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := DecodeAll(in)
			runtime.ReadMemStats(&after)
			require.ErrorIs(t, err, ErrInvalid)
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d input bytes, %d allocated", len(in), alloc)
			// Live memory stays near MaxValues×32 bytes; slices growing by
			// append add a few times that in garbage. Either way, not
			// proportional to the input: 1 MiB and 8 MiB cost the same.
			require.Less(t, alloc, uint64(8<<20))
		})
	}
	// Within the cap, still decoded.
	vals, err := DecodeAll(nullArray(MaxValues-1, MaxValues-1))
	require.NoError(t, err)
	require.Len(t, vals[0], MaxValues-1)
}

func TestAccessors(t *testing.T) {
	o := Object{{"code", "NetStream.Publish.Start"}, {"n", 2.0}}
	s, ok := o.String("code")
	require.True(t, ok)
	require.Equal(t, "NetStream.Publish.Start", s)
	n, ok := o.Number("n")
	require.True(t, ok)
	require.Equal(t, 2.0, n)
	require.Nil(t, o.Get("missing"))
	a := ECMAArray{{"width", 640.0}}
	w, ok := a.Number("width")
	require.True(t, ok)
	require.Equal(t, 640.0, w)
	ps, ok := Properties(a)
	require.True(t, ok)
	require.Len(t, ps, 1)
	_, ok = Properties(1.0)
	require.False(t, ok)
}

// FuzzDecode checks that arbitrary input never panics, that whatever
// decodes re-encodes, and that the re-encoding decodes to the same values.
func FuzzDecode(f *testing.F) {
	for _, c := range cases {
		f.Add(c.wire)
	}
	// Hostile servers' patterns (issue 12).
	f.Add(nullArray(MaxValues+1, MaxValues+1))
	f.Add(nullArray(1<<31, 8))
	f.Add(manyProps(1000))
	f.Add(bytes.Repeat([]byte{MarkerNull}, 4096))
	f.Fuzz(func(t *testing.T, in []byte) {
		vals, err := DecodeAll(in)
		if err != nil {
			return
		}
		b, err := Marshal(vals...)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := DecodeAll(b)
		if err != nil {
			t.Fatalf("decode of re-encoding: %v", err)
		}
		if len(again) != len(vals) {
			t.Fatalf("%d values, then %d", len(vals), len(again))
		}
		b2, _ := Marshal(again...)
		if !bytes.Equal(b, b2) {
			t.Fatalf("encoding not stable")
		}
	})
}
