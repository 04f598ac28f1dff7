package wcsapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The product this server reproduces is driven by web pages that send every
// form field as a string ("true", "5060"), and by scripts that send real JSON
// booleans and numbers. The flex types accept both, and remember whether the
// field was present at all, so that "absent" and "false" stay different.

// flexBool is a JSON boolean that also accepts "true"/"false" (any case),
// "1"/"0", "yes"/"no", "on"/"off", the numbers 1 and 0, "" and null (both as
// absent).
type flexBool struct {
	Value bool
	Set   bool
}

// scalarText is the text of a JSON scalar: a string's contents, trimmed,
// or a number's or boolean's literal; "" for null.
func scalarText(data []byte) (string, error) {
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, []byte("null")) {
		return "", nil
	}
	s := string(data)
	if len(data) > 0 && data[0] == '"' {
		if err := json.Unmarshal(data, &s); err != nil {
			return "", err
		}
	}
	return strings.TrimSpace(s), nil
}

func (b *flexBool) UnmarshalJSON(data []byte) error {
	s, err := scalarText(data)
	if err != nil {
		return err
	}
	switch strings.ToLower(s) {
	case "":
		*b = flexBool{}
	case "true", "1", "yes", "on":
		*b = flexBool{Value: true, Set: true}
	case "false", "0", "no", "off":
		*b = flexBool{Value: false, Set: true}
	default:
		return fmt.Errorf("%q is not a boolean", truncate(s, 40))
	}
	return nil
}

// or returns the value, or def when the field was absent.
func (b flexBool) or(def bool) bool {
	if b.Set {
		return b.Value
	}
	return def
}

// flexInt is a JSON integer that also accepts a decimal string ("5060"),
// "" and null (both as absent).
type flexInt struct {
	Value int
	Set   bool
}

func (n *flexInt) UnmarshalJSON(data []byte) error {
	s, err := scalarText(data)
	if err != nil {
		return err
	}
	if s == "" {
		*n = flexInt{}
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return fmt.Errorf("%q is not an integer", truncate(s, 40))
	}
	*n = flexInt{Value: int(v), Set: true}
	return nil
}

// flexString is a JSON string that also accepts a number or a boolean (a
// callee "1001" sent as 1001), keeping its text.
type flexString string

func (s *flexString) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("null")) {
		*s = ""
		return nil
	}
	switch data[0] {
	case '"':
		var v string
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		*s = flexString(v)
		return nil
	case '{', '[':
		return fmt.Errorf("an object or array where a string was expected")
	default:
		// A number, true or false: keep the literal text. json.Valid was
		// already checked by the decoder for the whole document.
		*s = flexString(data)
		return nil
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
