// Package clientaddr finds the address of the client behind a request:
// the connection's peer, or what trusted proxies report in X-Forwarded-For
// or Forwarded (RFC 7239). The token server throttles logins and logs
// security events by it; its command parses the flags with it.
package clientaddr

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Forwarding headers a proxy can report the client address in.
const (
	HeaderXForwardedFor = "X-Forwarded-For"
	HeaderForwarded     = "Forwarded" // RFC 7239
)

// maxForwardHops bounds how many forwarding-header entries are examined:
// a real chain of proxies is a handful long.
const maxForwardHops = 16

// TrustedProxies says which peers may report the client's address.
type TrustedProxies struct {
	// Prefixes are the proxies' addresses. Only a connection from one of
	// them has its forwarding header read; anyone else could write any
	// address there and slip past the login throttle.
	Prefixes []netip.Prefix
	// Header is HeaderXForwardedFor (when empty) or HeaderForwarded: the
	// one the proxies write. The other is ignored, since a proxy passes a
	// header it does not write through untouched, with whatever the client
	// put in it.
	Header string
}

// ParseTrustedProxies reads a list of CIDR prefixes (a bare address is a
// single host) and a header name, as the --trusted-proxies and
// --forwarded-header flags give them.
func ParseTrustedProxies(cidrs []string, header string) (TrustedProxies, error) {
	tp := TrustedProxies{}
	switch {
	case header == "" || strings.EqualFold(header, HeaderXForwardedFor):
		tp.Header = HeaderXForwardedFor
	case strings.EqualFold(header, HeaderForwarded):
		tp.Header = HeaderForwarded
	default:
		return TrustedProxies{}, fmt.Errorf("forwarded header %q is neither %s nor %s", header, HeaderXForwardedFor, HeaderForwarded)
	}
	for _, c := range cidrs {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			a, aerr := netip.ParseAddr(c)
			if aerr != nil || a.Zone() != "" {
				return TrustedProxies{}, fmt.Errorf("trusted proxy %q is not a CIDR prefix such as 10.0.0.0/8 or fd00::/8, nor an IP address", c)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Masked() != p {
			return TrustedProxies{}, fmt.Errorf("trusted proxy %q has host bits set; did you mean %s?", c, p.Masked())
		}
		tp.Prefixes = append(tp.Prefixes, p)
	}
	return tp, nil
}

func (tp *TrustedProxies) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range tp.Prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr is the address of the client behind r. It starts from the
// connection's peer and, while that peer is a trusted proxy, steps one
// entry leftwards through the forwarding header: each entry was appended by
// the proxy to its right, so the first untrusted one is the client. Entries
// further left were written by the client and are never believed. An
// entry that is not an address ("unknown", an obfuscated name) stops the
// walk at the proxy that wrote it.
func (tp *TrustedProxies) ClientAddr(r *http.Request) netip.Addr {
	peer, ok := parseHostAddr(r.RemoteAddr)
	if !ok || len(tp.Prefixes) == 0 || !tp.trusts(peer) {
		return peer
	}
	var hops []string // right to left
	if tp.Header == HeaderForwarded {
		all := forwardedFor(r.Header.Values(HeaderForwarded))
		for i := len(all) - 1; i >= 0 && len(hops) < maxForwardHops; i-- {
			hops = append(hops, all[i])
		}
	} else {
		hops = lastXForwardedFor(r.Header.Values(HeaderXForwardedFor))
	}
	for _, hop := range hops {
		a, ok := parseHostAddr(strings.TrimSpace(hop))
		if !ok {
			return peer
		}
		if !tp.trusts(a) {
			return a
		}
		peer = a
	}
	return peer
}

// lastXForwardedFor returns the last maxForwardHops entries of the
// X-Forwarded-For lines, right to left, without splitting the rest: a
// client can send a long list through the proxy.
func lastXForwardedFor(values []string) []string {
	var hops []string
	for i := len(values) - 1; i >= 0 && len(hops) < maxForwardHops; i-- {
		v := values[i]
		for len(hops) < maxForwardHops {
			j := strings.LastIndexByte(v, ',')
			hops = append(hops, v[j+1:])
			if j < 0 {
				break
			}
			v = v[:j]
		}
	}
	return hops
}

// parseHostAddr reads an address with or without a port: 192.0.2.1,
// 192.0.2.1:443, 2001:db8::1, [2001:db8::1] or [2001:db8::1]:443.
func parseHostAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// forwardedFor returns the for= values of RFC 7239 Forwarded headers, one
// per forwarded-element, in order; an element without for= yields "" (not
// an address, so a walk stops there).
func forwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for _, elem := range splitQuoted(v, ',') {
			for_ := ""
			for _, pair := range splitQuoted(elem, ';') {
				name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(name, "for") {
					for_ = strings.Trim(value, `"`)
				}
			}
			out = append(out, for_)
		}
	}
	return out
}

// splitQuoted splits s at sep outside double quotes (RFC 7230
// quoted-string, where a backslash escapes the next character).
func splitQuoted(s string, sep byte) []string {
	var parts []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}
