package server

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

// document is a public document (metadata, discovery, JWKS) encoded once
// per configuration snapshot, with a strong ETag (RFC 9110 §8.8.3), so that
// a cache revalidates with If-None-Match and gets 304 Not Modified without
// the body (§13.1.2, §15.4.5). The header values are built once too: a
// request copies nothing but slice headers.
type document struct {
	body         []byte
	etag         []string
	contentType  []string
	cacheControl []string
	length       []string
}

func newDocument(body []byte, contentType, cacheControl string) *document {
	sum := sha256.Sum256(body)
	return &document{
		body:         body,
		etag:         []string{`"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`},
		contentType:  []string{contentType},
		cacheControl: []string{cacheControl},
		length:       []string{strconv.Itoa(len(body))},
	}
}

var anyOrigin = []string{"*"}

// serve answers GET and HEAD; readable by any origin, since a single-page
// app discovers its provider and keys from the browser.
func (doc *document) serve(w http.ResponseWriter, r *http.Request) result {
	if res, ok := onlyGET(w, r); !ok {
		return res
	}
	h := w.Header()
	h["Etag"] = doc.etag
	h["Cache-Control"] = doc.cacheControl
	h["Access-Control-Allow-Origin"] = anyOrigin
	if etagListMatches(r.Header["If-None-Match"], doc.etag[0]) {
		w.WriteHeader(http.StatusNotModified)
		return result{outcome: "not_modified"}
	}
	h["Content-Type"] = doc.contentType
	h["Content-Length"] = doc.length
	if r.Method == http.MethodGet {
		_, _ = w.Write(doc.body)
	}
	return result{outcome: outcomeSuccess}
}

// etagListMatches is If-None-Match's weak comparison (RFC 9110 §13.1.2):
// "*" or any listed tag, W/ or not, with the same opaque value, in any of
// the header's lines (a list may be split over several, §5.3). The lines
// are read from the map directly: the key is canonical already, and most
// requests have none.
func etagListMatches(lines []string, etag string) bool {
	for _, line := range lines {
		for t := range strings.SplitSeq(line, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == etag {
				return true
			}
		}
	}
	return false
}

// onlyGET refuses any method but GET and HEAD with 405.
func onlyGET(w http.ResponseWriter, r *http.Request) (result, bool) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return result{}, true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return result{outcome: "method_not_allowed"}, false
}
