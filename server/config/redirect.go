package config

// RedirectURIMatches reports whether a redirect_uri a client sent matches a
// URI it registered. Matching is exact, character for character (RFC 9700
// §4.1.3), with one exception: a native app's loopback URI registered with
// the literal address http://127.0.0.1 or http://[::1] matches on any port
// (RFC 8252 §7.3), because the app listens on whatever port the operating
// system gives it at the time of the request. Everything but the port must
// still be identical. The exception never applies to other hosts, not even
// localhost, which can be resolved to something other than loopback
// (RFC 8252 §8.3).
func RedirectURIMatches(registered, requested string) bool {
	if registered == requested {
		return true
	}
	for _, origin := range [...]string{"http://127.0.0.1", "http://[::1]"} {
		reg, ok1 := cutLoopbackOrigin(registered, origin)
		req, ok2 := cutLoopbackOrigin(requested, origin)
		if ok1 && ok2 {
			return reg == req
		}
	}
	return false
}

// cutLoopbackOrigin removes origin and an optional port from the front of
// uri and returns the path and query that follow. It fails unless the
// authority ends right there, so "http://127.0.0.1.evil.test/",
// "http://127.0.0.1:80@evil.test/" and "http://127.0.0.1:99999/" never
// count as loopback.
func cutLoopbackOrigin(uri, origin string) (string, bool) {
	if len(uri) < len(origin) || uri[:len(origin)] != origin {
		return "", false
	}
	rest := uri[len(origin):]
	if len(rest) > 0 && rest[0] == ':' {
		n := 1
		port := 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			port = port*10 + int(rest[n]-'0')
			n++
			if port > 65535 {
				return "", false
			}
		}
		// A port is 1 to 65535 written without leading zeros, the form
		// browsers and HTTP clients produce.
		if n == 1 || port == 0 || rest[1] == '0' {
			return "", false
		}
		rest = rest[n:]
	}
	if rest != "" && rest[0] != '/' && rest[0] != '?' {
		return "", false
	}
	return rest, true
}
