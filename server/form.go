package server

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
)

// maxFormBytes bounds a request body: no legitimate OAuth request comes
// close, and an unbounded read is a cheap denial of service.
const maxFormBytes = 64 << 10

// parsePostForm reads an application/x-www-form-urlencoded POST body
// (RFC 6749 §3.2). A parameter sent more than once is invalid_request
// (§3.1, §3.2); one sent without a value counts as omitted.
func parsePostForm(w http.ResponseWriter, r *http.Request) (url.Values, *Error) {
	if r.Method != http.MethodPost {
		return nil, &Error{Code: ErrInvalidRequest, Description: "the request must use POST", Status: http.StatusMethodNotAllowed}
	}
	if !isFormContentType(r.Header.Get("Content-Type")) {
		return nil, invalidRequest("the request body must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxFormBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &Error{Code: ErrInvalidRequest, Description: "the request body is too large", Status: http.StatusRequestEntityTooLarge}
		}
		return nil, invalidRequest("the request body could not be read")
	}
	return parseFormValues(string(body))
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

// parseFormValues parses an urlencoded parameter list strictly.
func parseFormValues(s string) (url.Values, *Error) {
	form, err := url.ParseQuery(s)
	if err != nil {
		return nil, invalidRequest("the request body is not valid form encoding")
	}
	return strictValues(form)
}

// strictValues rejects repeated parameters and drops empty ones.
func strictValues(form url.Values) (url.Values, *Error) {
	for k, vs := range form {
		if len(vs) > 1 {
			return nil, invalidRequest("parameter " + safeName(k) + " is repeated")
		}
		if vs[0] == "" {
			delete(form, k)
		}
	}
	return form, nil
}

// safeName quotes a parameter name for an error description, bounded and
// printable so that it cannot inject into logs or JSON consumers' displays.
func safeName(k string) string {
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
