// Package jsonappend writes JSON by appending to a byte slice. The token
// endpoint writes its JSON (claims and responses) this way instead of
// through encoding/json's reflection: it is a large part of a token's cost
// otherwise. The output is what encoding/json would accept and decode to
// the same values (RFC 8259 §7); the tests compare the two.
package jsonappend

import (
	"strconv"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// String appends s as a JSON string.
func String(b []byte, s string) []byte {
	b = append(b, '"')
	b = Chars(b, s)
	return append(b, '"')
}

// Chars appends s escaped for the inside of a JSON string.
// Invalid UTF-8 becomes U+FFFD, as encoding/json does.
func Chars(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}

// Member appends ,"name":"value" (without the comma when first).
func Member(b []byte, name, value string) []byte {
	if len(b) > 0 && b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return String(b, value)
}

// Int appends ,"name":n.
func Int(b []byte, name string, n int64) []byte {
	if len(b) > 0 && b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, n, 10)
}

// Strings appends ,"name":["v1",...].
func Strings(b []byte, name string, values []string) []byte {
	if len(b) > 0 && b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, '"', ':', '[')
	for i, v := range values {
		if i > 0 {
			b = append(b, ',')
		}
		b = String(b, v)
	}
	return append(b, ']')
}
