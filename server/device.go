package server

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
	deviceCookie        = "gatehouse-device"
	deviceCookieMaxAge  = 30 * 24 * 60 * 60 // seconds: the default key rotation interval
	deviceNonceBytes    = 16
	deviceKeyDerivation = "gatehouse device cookie v1"
)

type deviceID [deviceNonceBytes]byte

// deviceKeys are the HMAC keys of a key set, by kid, derived once per
// snapshot: deriving on the login path would marshal private keys per
// request.
type deviceKeys map[string][]byte

func deriveDeviceKeys(set *keyset.Set) deviceKeys {
	dk := deviceKeys{}
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
		m := hmac.New(sha256.New, []byte(deviceKeyDerivation))
		m.Write(der)
		dk[k.ID] = m.Sum(nil)
	}
	return dk
}

func deviceMAC(key []byte, nonce deviceID, username string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(nonce[:])
	m.Write([]byte(username))
	return m.Sum(nil)
}

// issue returns a new device cookie value for username, made with key
// kid; "" when there is no such key.
func (dk deviceKeys) issue(kid, username string) string {
	key, ok := dk[kid]
	if !ok {
		return ""
	}
	var nonce deviceID
	_, _ = rand.Read(nonce[:])
	enc := base64.RawURLEncoding
	return kid + "." + enc.EncodeToString(nonce[:]) + "." + enc.EncodeToString(deviceMAC(key, nonce, username))
}

// verify reports whether value is a device cookie issued for username,
// and which device it names.
func (dk deviceKeys) verify(value, username string) (deviceID, bool) {
	var nonce deviceID
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
	if err != nil || len(n) != deviceNonceBytes {
		return nonce, false
	}
	mac, err := enc.DecodeString(rawMAC)
	if err != nil {
		return nonce, false
	}
	copy(nonce[:], n)
	if !hmac.Equal(mac, deviceMAC(key, nonce, username)) {
		return deviceID{}, false
	}
	return nonce, true
}
