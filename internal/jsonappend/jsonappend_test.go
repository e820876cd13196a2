package jsonappend

import (
	"encoding/json"
	"reflect"
	"testing"
)

var hardStrings = []string{"", "plain", `q"uote`, `back\slash`, "nl\nTab\tcr\r", "ctl\x00\x01\x1f\x7f", "ünïcödé ✓ 𝄞",
	"bad\xffutf8\xc3", "\u2028\u2029", "<script>&"}

// Each string decodes to what encoding/json would have written, the ones
// that need escaping or hold invalid UTF-8 too.
func TestStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range hardStrings {
		var got string
		if err := json.Unmarshal(String(nil, s), &got); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		want, _ := json.Marshal(s)
		var wantS string
		_ = json.Unmarshal(want, &wantS)
		if got != wantS {
			t.Errorf("%q decodes to %q, encoding/json gives %q", s, got, wantS)
		}
	}
}

// Members written in a row make one object encoding/json reads back.
func TestMembersMakeAnObject(t *testing.T) {
	b := []byte{'{'}
	b = Member(b, "s", hardStrings[2])
	b = Int(b, "n", -42)
	b = Strings(b, "l", hardStrings)
	b = Strings(b, "e", nil)
	b = append(b, '}')
	var got struct {
		S string   `json:"s"`
		N int64    `json:"n"`
		L []string `json:"l"`
		E []string `json:"e"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	var want []string
	w, _ := json.Marshal(hardStrings)
	_ = json.Unmarshal(w, &want)
	if got.S != hardStrings[2] || got.N != -42 || !reflect.DeepEqual(got.L, want) || got.E == nil || len(got.E) != 0 {
		t.Errorf("%s decodes to %+v", b, got)
	}
}
