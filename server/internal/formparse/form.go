// Package formparse reads the application/x-www-form-urlencoded requests of
// OAuth 2.0 (RFC 6749 §3.1, §3.2) strictly: bounded, a repeated parameter
// refused, an empty one dropped. Its refusals are invalid_request; the
// server turns them into its typed errors.
package formparse

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Error is a request the parser refuses: an invalid_request (RFC 6749
// §4.1.2.1, §5.2) with Status as its HTTP status. Description never
// carries a value from the request, only a parameter's quoted name.
type Error struct {
	Status      int
	Description string
}

func (e *Error) Error() string { return e.Description }

func invalid(desc string) *Error { return &Error{Status: http.StatusBadRequest, Description: desc} }

// maxFormBytes bounds a request body: no legitimate OAuth request comes
// close, and an unbounded read is a cheap denial of service.
const maxFormBytes = 64 << 10

// ParsePost reads an application/x-www-form-urlencoded POST body
// (RFC 6749 §3.2). A parameter sent more than once is invalid_request
// (§3.1, §3.2), except the repeatable ones; one sent without a value
// counts as omitted.
func ParsePost(w http.ResponseWriter, r *http.Request) (url.Values, *Error) {
	if r.Method != http.MethodPost {
		return nil, &Error{Description: "the request must use POST", Status: http.StatusMethodNotAllowed}
	}
	if !isFormContentType(r.Header.Get("Content-Type")) {
		return nil, invalid("the request body must be application/x-www-form-urlencoded")
	}
	body, err := readFormBody(w, r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &Error{Description: "the request body is too large", Status: http.StatusRequestEntityTooLarge}
		}
		return nil, invalid("the request body could not be read")
	}
	return Parse(string(body))
}

// readFormBody reads a body of at most maxFormBytes. A declared length
// within the bound is read in one buffer of that size (net/http ends the
// body there); a larger or unknown one through http.MaxBytesReader, which
// refuses what goes over and closes the connection.
func readFormBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if n := r.ContentLength; n >= 0 && n <= maxFormBytes {
		body := make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes))
}

const formContentType = "application/x-www-form-urlencoded"

// isFormContentType: the exact type, as nearly every client sends it,
// without mime.ParseMediaType's allocations; anything else (parameters,
// other case) goes through the parser.
func isFormContentType(v string) bool {
	if v == formContentType {
		return true
	}
	ct, _, err := mime.ParseMediaType(v)
	return err == nil && ct == formContentType
}

// maxFormParams is net/url's default bound on parameters (a GODEBUG can
// move it there; a form here never comes near).
const maxFormParams = 10000

// repeatable reports whether a parameter may be sent more than once:
// resource (RFC 8707 §2) and audience (RFC 8693 §2.1) name one target
// each.
func repeatable(k string) bool { return k == "resource" || k == "audience" }

// Parse parses an urlencoded parameter list strictly: a
// parameter sent twice is invalid_request (unless repeatable), an empty
// one is dropped. It
// accepts and returns what url.ParseQuery followed by those two rules
// would (FuzzParse compares them), with fewer allocations: the
// one-element value slices share one array, and the map is sized once for
// a request of up to 16 parameters.
func Parse(s string) (url.Values, *Error) {
	n := strings.Count(s, "&") + 1
	if n > maxFormParams {
		return nil, invalid("the request body is not valid form encoding")
	}
	// Sized for an OAuth request, not for what a body claims: a body of
	// ampersands must not buy a large allocation. Should values grow, the
	// entries made so far keep the old array, each still capped.
	form := make(url.Values, min(n, 16))
	values := make([]string, 0, min(n, 16))
	bad, isRepeated, repeated := false, false, ""
	for rest := s; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if strings.Contains(pair, ";") {
			bad = true
			continue
		}
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			bad = true
			continue
		}
		if vs, dup := form[k]; dup {
			if repeatable(k) {
				form[k] = append(vs, v)
			} else {
				isRepeated, repeated = true, k
			}
			continue
		}
		values = append(values, v)
		form[k] = values[len(values)-1 : len(values) : len(values)]
	}
	switch {
	case bad:
		return nil, invalid("the request body is not valid form encoding")
	case isRepeated:
		return nil, invalid("parameter " + SafeName(repeated) + " is repeated")
	}
	dropEmpty(form)
	return form, nil
}

// dropEmpty removes the values sent empty, which count as omitted.
func dropEmpty(form url.Values) {
	for k, vs := range form {
		if len(vs) > 1 {
			vs = slices.DeleteFunc(vs, func(v string) bool { return v == "" })
			form[k] = vs
		}
		if len(vs) == 0 || vs[0] == "" {
			delete(form, k)
		}
	}
}

// SafeName quotes a request's value (a parameter name, a scope) for an
// error description, bounded and printable so that it cannot inject into
// logs or JSON consumers' displays.
func SafeName(k string) string {
	const limit = 40
	out := make([]byte, 0, len(k)+2)
	out = append(out, '"')
	for i := 0; i < len(k) && i < limit; i++ {
		c := k[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			c = '?'
		}
		out = append(out, c)
	}
	if len(k) > limit {
		out = append(out, "..."...)
	}
	return string(append(out, '"'))
}

// Strict rejects repeated parameters (but the repeatable ones) and
// drops empty ones, for parameters parsed elsewhere (a query string).
func Strict(form url.Values) (url.Values, *Error) {
	for k, vs := range form {
		if len(vs) > 1 && !repeatable(k) {
			return nil, invalid("parameter " + SafeName(k) + " is repeated")
		}
	}
	dropEmpty(form)
	return form, nil
}
