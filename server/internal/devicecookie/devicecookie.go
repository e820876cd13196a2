// Package devicecookie issues and verifies the login page's device
// cookies, which let the login throttle tell a browser that has signed in
// to an account before from everyone else. (Not RFC 8628's device
// authorization grant, which is unrelated.)
package devicecookie

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/keyset"
)

// Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device
// Cookies"). A browser in which someone logged in to an account receives a
// cookie that proves it, for that account only. A later login to that
// account from that browser is throttled by the cookie alone, not by the
// account or address buckets, so an attacker who empties those (guessing
// the account's password, or spraying from a shared address such as a
// company's NAT) does not keep its owner out. Failures with the cookie
// spend its own bucket, so a stolen cookie buys no more guesses than an
// account has.
//
// The cookie is kid.nonce.mac, mac = HMAC-SHA256(k, nonce || username)
// with k derived from the signing key kid. The username is not in the
// cookie; a cookie for another account does not verify. Every replica holds
// the same keys, and a cookie lapses when its key leaves the key set.
const (
	// Name is the cookie's name (before the __Host- prefix an https
	// issuer adds).
	Name = "gatehouse-device"
	// MaxAge is the cookie's lifetime in seconds: the default key rotation
	// interval.
	MaxAge        = 30 * 24 * 60 * 60
	nonceBytes    = 16
	keyDerivation = "gatehouse device cookie v1"
)

// ID names one browser: the cookie's nonce.
type ID [nonceBytes]byte

// Keys are the HMAC keys of a key set, by kid, derived once per
// snapshot: deriving on the login path would marshal private keys per
// request.
type Keys map[string][]byte

// DeriveKeys derives the cookie keys of every key in set that has a
// private part; set may be nil.
func DeriveKeys(set *keyset.Set) Keys {
	dk := Keys{}
	if set == nil {
		return dk
	}
	for i := range set.Keys {
		k := &set.Keys[i]
		if k.Signer() == nil {
			continue
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.Signer())
		if err != nil {
			continue
		}
		// HMAC as a key-derivation function (HKDF-Extract): the signing
		// key's secret never serves two purposes directly.
		m := hmac.New(sha256.New, []byte(keyDerivation))
		m.Write(der)
		dk[k.ID] = m.Sum(nil)
	}
	return dk
}

func mac(key []byte, nonce ID, username string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(nonce[:])
	m.Write([]byte(username))
	return m.Sum(nil)
}

// Issue returns a new device cookie value for username, made with key
// kid; "" when there is no such key.
func (dk Keys) Issue(kid, username string) string {
	key, ok := dk[kid]
	if !ok {
		return ""
	}
	var nonce ID
	_, _ = rand.Read(nonce[:])
	enc := base64.RawURLEncoding
	return kid + "." + enc.EncodeToString(nonce[:]) + "." + enc.EncodeToString(mac(key, nonce, username))
}

// Verify reports whether value is a device cookie issued for username,
// and which device it names.
func (dk Keys) Verify(value, username string) (ID, bool) {
	var nonce ID
	kid, rest, ok := strings.Cut(value, ".")
	if !ok {
		return nonce, false
	}
	rawNonce, rawMAC, ok := strings.Cut(rest, ".")
	key, known := dk[kid]
	if !ok || !known {
		return nonce, false
	}
	enc := base64.RawURLEncoding
	n, err := enc.DecodeString(rawNonce)
	if err != nil || len(n) != nonceBytes {
		return nonce, false
	}
	got, err := enc.DecodeString(rawMAC)
	if err != nil {
		return nonce, false
	}
	copy(nonce[:], n)
	if !hmac.Equal(got, mac(key, nonce, username)) {
		return ID{}, false
	}
	return nonce, true
}
