package server

import (
	"crypto/rand"
	"strings"
)

// User codes (RFC 8628 §6.1): what a person reads off a device and types
// into the /device page, so short and unambiguous rather than secret.
//
// 8 characters of a 20-letter alphabet are 20^8 ≈ 2.56·10^10 codes (34.5
// bits). The alphabet is the consonants without the look-alikes: no
// vowels (no words, no 0/O or 1/I confusion), no digits, and, being
// letters only, one case, so typing is forgiving (normalizeUserCode). A
// guesser is held by the login throttle's address bucket (20 tries, then
// one per 5 s), so finding one of even a thousand live codes takes about
// 2.56·10^7 tries: over four years from one address.
const (
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLength   = 8
)

// newUserCode draws a user code uniformly from the alphabet, in its
// stored form (8 letters, no dash).
func newUserCode() string {
	var b [userCodeLength]byte
	// Rejection sampling: 256 is not a multiple of 20, so bytes at or
	// above 240 would favour the first 16 letters.
	const limit = 256 - 256%len(userCodeAlphabet)
	var buf [32]byte
	for i := 0; i < len(b); {
		_, _ = rand.Read(buf[:])
		for _, x := range buf {
			if i == len(b) {
				break
			}
			if int(x) < limit {
				b[i] = userCodeAlphabet[int(x)%len(userCodeAlphabet)]
				i++
			}
		}
	}
	return string(b[:])
}

// displayUserCode is a user code as people see it: XXXX-XXXX.
func displayUserCode(code string) string {
	if len(code) != userCodeLength {
		return code
	}
	return code[:4] + "-" + code[4:]
}

// maxUserCodeInput bounds what the /device form may carry in the code
// field before it is even looked at.
const maxUserCodeInput = 64

// normalizeUserCode turns what a person typed into a user code's stored
// form: case, dashes and white space do not matter (RFC 8628 §6.1). It
// reports false when what is left is not 8 letters of the alphabet, so a
// typo is answered without a lookup.
func normalizeUserCode(typed string) (string, bool) {
	if len(typed) > maxUserCodeInput {
		return "", false
	}
	var b strings.Builder
	b.Grow(userCodeLength)
	for _, r := range typed {
		switch {
		case r == '-' || r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\u00a0':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		if r > 'Z' || !strings.ContainsRune(userCodeAlphabet, r) || b.Len() == userCodeLength {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != userCodeLength {
		return "", false
	}
	return b.String(), true
}
