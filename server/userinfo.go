package server

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/oidc"
	"github.com/gatehouse-dev/gatehouse/server/config"
)

// RFC 6750 §3.1 error codes of a protected resource.
const (
	ErrInvalidToken      = "invalid_token"
	ErrInsufficientScope = "insufficient_scope"
)

// bearerError is an RFC 6750 §3 error: a 401 or 403 with WWW-Authenticate:
// Bearer, or a 400. Code is empty when the request carried no token at
// all (§3.1: then the challenge names no error).
type bearerError struct {
	Status      int
	Code        string
	Description string
	Scope       string
}

// writeBearerError writes the challenge, and the same error as JSON for
// clients that read bodies.
func writeBearerError(w http.ResponseWriter, realm string, e bearerError) {
	h := w.Header()
	noStore(h)
	challenge := `Bearer realm="` + realm + `"`
	if e.Code != "" {
		// The descriptions are ours and never contain '"' or '\'.
		challenge += `, error="` + e.Code + `", error_description="` + e.Description + `"`
	}
	if e.Scope != "" {
		challenge += `, scope="` + e.Scope + `"`
	}
	h.Set("WWW-Authenticate", challenge)
	if e.Code == "" {
		w.WriteHeader(e.Status)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}{e.Code, e.Description})
}

// userinfoResponse is the UserInfo response (OpenID Connect Core §5.3.2):
// sub and the claims the token's scopes release.
type userinfoResponse struct {
	Subject string `json:"sub"`
	userClaims
}

// handleUserinfo is the UserInfo endpoint (Core §5.3), GET or POST with
// the access token as a Bearer token (RFC 6750 §2.1, or §2.2 in a POST
// form). The token must be a live access token of this server for a
// person, granted openid. Everything it reads is in memory or in storage:
// never the API server.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request, snap *config.Snapshot) result {
	now := s.now()
	fail := func(e bearerError) result {
		writeBearerError(w, snap.Issuer, e)
		if e.Code == "" {
			return result{outcome: "no_token"}
		}
		return result{outcome: e.Code}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return result{outcome: "method_not_allowed"}
	}
	token, e := bearerToken(w, r)
	if e != nil {
		return fail(*e)
	}
	invalid := func(desc string) result {
		return fail(bearerError{Status: http.StatusUnauthorized, Code: ErrInvalidToken, Description: desc})
	}
	claims, ok := s.verifiedAccessToken(snap, token)
	switch {
	case !ok:
		return invalid("the access token is not one this server issued")
	case !claims.ExpiresAt.After(now):
		return invalid("the access token has expired")
	case claims.AuthTime == 0 || snap.Subject(claims.Subject) != config.SubjectActive:
		// A client's own token has no person; a removed person has no
		// claims any more (and while the users Secret cannot be read,
		// nobody's can be given).
		return invalid("the access token is not for a person this server knows")
	}
	revoked, err := s.store.IsAccessTokenRevoked(r.Context(), claims.ID, claims.GrantID, now)
	if err != nil {
		s.log.Error("userinfo: reading revocations", "error", err)
		writeError(w, serverError("the token could not be checked"), snap.Issuer)
		return result{outcome: ErrServerError}
	}
	if revoked {
		return invalid("the access token has been revoked")
	}
	scopes := strings.Fields(claims.Scope)
	if !isOpenIDRequest(scopes) {
		return fail(bearerError{Status: http.StatusForbidden, Code: ErrInsufficientScope,
			Description: "userinfo needs a token granted the openid scope", Scope: oidc.ScopeOpenID})
	}
	released, mapped, err := s.claimsFor(snap, snap.Clients.Get(claims.ClientID), claims.Subject, scopes, claims.UserinfoClaims)
	var body []byte
	if err == nil {
		body, err = json.Marshal(userinfoResponse{Subject: claims.Subject, userClaims: released})
	}
	if err == nil {
		body, err = appendMappedClaims(body, mapped)
	}
	if err != nil {
		s.log.Error("userinfo: claim mapping failed", "client_id", claims.ClientID, "error", err)
		writeError(w, serverError("the claim mapping failed for this person"), snap.Issuer)
		return result{outcome: ErrServerError}
	}
	writeJSON(w, json.RawMessage(body))
	return result{outcome: outcomeSuccess}
}

// bearerToken reads the access token from the Authorization header (RFC
// 6750 §2.1) or, in a POST, from the form body (§2.2); never from the
// query (§2.3 is for when nothing else works, and leaks into logs). More
// than one method is invalid_request (§2).
func bearerToken(w http.ResponseWriter, r *http.Request) (string, *bearerError) {
	var found []string
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return "", &bearerError{Status: http.StatusUnauthorized}
		}
		found = append(found, strings.TrimSpace(token))
	}
	if r.Method == http.MethodPost && r.Header.Get("Content-Type") != "" {
		form, e := parsePostForm(w, r)
		if e != nil {
			return "", &bearerError{Status: http.StatusBadRequest, Code: ErrInvalidRequest, Description: e.Description}
		}
		if t := form.Get("access_token"); t != "" {
			found = append(found, t)
		}
	}
	switch {
	case len(found) == 0:
		return "", &bearerError{Status: http.StatusUnauthorized}
	case len(found) > 1:
		return "", &bearerError{Status: http.StatusBadRequest, Code: ErrInvalidRequest, Description: "the access token is sent in more than one way"}
	case found[0] == "":
		return "", &bearerError{Status: http.StatusUnauthorized, Code: ErrInvalidToken, Description: "the Authorization header has no token"}
	}
	return found[0], nil
}
