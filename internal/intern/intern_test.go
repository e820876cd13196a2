package intern

import (
	"runtime"
	"strconv"
	"testing"
	"unsafe"
)

func TestEqualStringsShareOneCopyAcrossCollections(t *testing.T) {
	first := String(string([]byte("https://auth.example.com/token")))
	runtime.GC()
	runtime.GC()
	second := String(string([]byte("https://auth.example.com/token")))
	if unsafe.StringData(first) != unsafe.StringData(second) {
		t.Error("a string interned after a garbage collection got a copy of its own")
	}
	b := ReadOnlyBytes([]byte("https://auth.example.com/token"))
	if unsafe.SliceData(b) != unsafe.StringData(first) || string(b) != first {
		t.Error("ReadOnlyBytes did not share the canonical copy")
	}
	if cap(b) != len(b) {
		t.Error("an append to shared bytes could write into the canonical copy")
	}
}

func TestFullTableStillAnswersRight(t *testing.T) {
	for i := 0; len(table.m) < maxEntries; i++ {
		String("filler-" + strconv.Itoa(i))
	}
	s := string([]byte("not interned: the table is full"))
	if got := String(s); got != s || unsafe.StringData(got) != unsafe.StringData(s) {
		t.Errorf("String(%q) with a full table = %q, want the string itself", s, got)
	}
	if len(table.m) != maxEntries {
		t.Errorf("table grew to %d entries, want at most %d", len(table.m), maxEntries)
	}
}

func TestKeysLeavesTheMapAlone(t *testing.T) {
	in := map[string]string{"app.kubernetes.io/managed-by": "gatehouse", "oauth.gatehouse.dev/client": "web"}
	out := Keys(in, func(k string) bool { return k == "app.kubernetes.io/managed-by" })
	if len(out) != 2 || out["oauth.gatehouse.dev/client"] != "web" || out["app.kubernetes.io/managed-by"] != "gatehouse" {
		t.Errorf("Keys = %v", out)
	}
	out["x"] = "y"
	if _, ok := in["x"]; ok {
		t.Error("Keys returned the map it was given")
	}
}
