package clientaddr

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestClientAddr(t *testing.T) {
	proxies, err := ParseTrustedProxies([]string{"10.0.0.0/8", "fd00::/8", "192.0.2.7"}, "")
	if err != nil {
		t.Fatal(err)
	}
	fwd := proxies
	fwd.Header = HeaderForwarded
	for _, tc := range []struct {
		name    string
		tp      TrustedProxies
		peer    string
		headers map[string][]string
		want    string
	}{
		{"no proxies configured: the header is ignored", TrustedProxies{}, "10.1.2.3:5000",
			map[string][]string{"X-Forwarded-For": {"203.0.113.9"}}, "10.1.2.3"},
		{"untrusted peer: its header is ignored", proxies, "198.51.100.1:5000",
			map[string][]string{"X-Forwarded-For": {"203.0.113.9"}}, "198.51.100.1"},
		{"trusted peer", proxies, "10.1.2.3:5000",
			map[string][]string{"X-Forwarded-For": {"203.0.113.9"}}, "203.0.113.9"},
		{"a client-supplied entry left of the proxy's is not believed", proxies, "10.1.2.3:5000",
			map[string][]string{"X-Forwarded-For": {"1.2.3.4, 203.0.113.9"}}, "203.0.113.9"},
		{"a chain of trusted proxies", proxies, "10.1.2.3:5000",
			map[string][]string{"X-Forwarded-For": {"6.6.6.6, 203.0.113.9", "192.0.2.7, 10.9.9.9"}}, "203.0.113.9"},
		{"all trusted: the leftmost", proxies, "10.1.2.3:5000",
			map[string][]string{"X-Forwarded-For": {"10.4.4.4, 10.5.5.5"}}, "10.4.4.4"},
		{"no header from a trusted proxy: the proxy", proxies, "10.1.2.3:5000", nil, "10.1.2.3"},
		{"garbage stops at the proxy that wrote it", proxies, "10.1.2.3:5000",
			map[string][]string{"X-Forwarded-For": {"203.0.113.9, bogus"}}, "10.1.2.3"},
		{"ports and IPv6", proxies, "[fd00::1]:5000",
			map[string][]string{"X-Forwarded-For": {"[2001:db8::5]:443"}}, "2001:db8::5"},
		{"IPv4-mapped peer", proxies, "[::ffff:10.1.2.3]:5000",
			map[string][]string{"X-Forwarded-For": {"203.0.113.9"}}, "203.0.113.9"},
		{"X-Forwarded-For configured: Forwarded is ignored", proxies, "10.1.2.3:5000",
			map[string][]string{"Forwarded": {"for=1.2.3.4"}, "X-Forwarded-For": {"203.0.113.9"}}, "203.0.113.9"},
		{"Forwarded configured: X-Forwarded-For is ignored", fwd, "10.1.2.3:5000",
			map[string][]string{"Forwarded": {`for=203.0.113.9;proto=https`}, "X-Forwarded-For": {"1.2.3.4"}}, "203.0.113.9"},
		{"Forwarded with quotes, ports and a chain", fwd, "10.1.2.3:5000",
			map[string][]string{"Forwarded": {`for=1.2.3.4, for="[2001:db8::5]:4711";by=10.1.2.3`, `For="10.7.7.7:80"`}}, "2001:db8::5"},
		{"Forwarded unknown stops the walk", fwd, "10.1.2.3:5000",
			map[string][]string{"Forwarded": {`for=203.0.113.9, for=unknown`}}, "10.1.2.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/login", nil)
			r.RemoteAddr = tc.peer
			for k, vs := range tc.headers {
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			if got := tc.tp.ClientAddr(r); got.String() != tc.want {
				t.Errorf("clientAddr = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	tp, err := ParseTrustedProxies([]string{" 10.0.0.0/8", "2001:db8::1", "", "::ffff:192.0.2.1"}, "forwarded")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(tp.Prefixes); got != "[10.0.0.0/8 2001:db8::1/128 192.0.2.1/32]" || tp.Header != HeaderForwarded {
		t.Errorf("parsed %s %s", got, tp.Header)
	}
	for _, tc := range []struct {
		cidrs  []string
		header string
		want   string
	}{
		{[]string{"10.0.0.1/8"}, "", "has host bits set; did you mean 10.0.0.0/8?"},
		{[]string{"10.0.0.0/33"}, "", "is not a CIDR prefix"},
		{[]string{"proxy.example"}, "", "is not a CIDR prefix"},
		{[]string{"fe80::1%eth0"}, "", "is not a CIDR prefix"},
		{nil, "X-Real-IP", `forwarded header "X-Real-IP" is neither`},
	} {
		if _, err := ParseTrustedProxies(tc.cidrs, tc.header); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseTrustedProxies(%q, %q) = %v, want %q", tc.cidrs, tc.header, err, tc.want)
		}
	}
}

// A client can send any number of X-Forwarded-For entries through the
// proxy; only the last few are looked at, and a chain longer than that
// stops at the last proxy examined.
func TestClientAddrLongForwardedFor(t *testing.T) {
	tp, _ := ParseTrustedProxies([]string{"10.0.0.0/8"}, "")
	r := httptest.NewRequest(http.MethodPost, "/login", nil)
	r.RemoteAddr = "10.0.0.1:5000"
	r.Header.Set("X-Forwarded-For", strings.Repeat("192.0.2.1, ", 5000)+"203.0.113.9")
	if got := tp.ClientAddr(r).String(); got != "203.0.113.9" {
		t.Errorf("clientAddr = %s, want 203.0.113.9", got)
	}
	r.Header.Set("X-Forwarded-For", "203.0.113.9, "+strings.TrimSuffix(strings.Repeat("10.0.0.2, ", maxForwardHops+1), ", "))
	if got := tp.ClientAddr(r).String(); got != "10.0.0.2" {
		t.Errorf("past %d trusted hops: clientAddr = %s, want the last proxy examined", maxForwardHops, got)
	}
}
