package jose

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// derToRS pads short integers on the left, and refuses what is not one
// SEQUENCE of two non-negative INTEGERs of at most 32 bytes.
func TestDerToRS(t *testing.T) {
	der := func(r, s []byte, extra ...byte) []byte {
		var b cryptobyte.Builder
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(asn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(r) })
			b.AddASN1(asn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(s) })
		})
		return append(b.BytesOrPanic(), extra...)
	}
	full := bytes.Repeat([]byte{0x7f}, 32)
	sig, err := derToRS(der([]byte{0x01, 0x02}, append([]byte{0}, bytes.Repeat([]byte{0xff}, 32)...)))
	want := append(append(make([]byte, 30), 0x01, 0x02), bytes.Repeat([]byte{0xff}, 32)...)
	if err != nil || !bytes.Equal(sig, want) {
		t.Fatalf("%x %v, want %x", sig, err, want)
	}
	for name, bad := range map[string][]byte{
		"r of 33 bytes": der(append([]byte{0x01}, full...), full),
		"negative s":    der(full, []byte{0x80}),
		"trailing data": der(full, full, 0),
		"empty":         nil,
	} {
		if _, err := derToRS(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
