package server

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"

	"github.com/gatehouse-dev/gatehouse/internal/oidc"
	"github.com/gatehouse-dev/gatehouse/server/config"
	"github.com/gatehouse-dev/gatehouse/server/internal/formparse"
)

// ErrUnmetAuthenticationRequirements is OpenID Connect Core Unmet
// Authentication Requirements 1.0's error: the request asks for an
// authentication this server cannot give.
const ErrUnmetAuthenticationRequirements = "unmet_authentication_requirements"

// Bounds on the claims parameter an unauthenticated caller may make the
// server store and parse again at every code exchange.
const (
	maxClaimsParam  = 4096
	maxClaimsMember = 32
)

// claimsRequest is the claims request parameter (OpenID Connect Core
// §5.5): claims asked for one by one, in the ID token and at userinfo,
// beyond what the scopes release.
type claimsRequest struct {
	UserInfo map[string]*claimRequest `json:"userinfo"`
	IDToken  map[string]*claimRequest `json:"id_token"`
}

// claimRequest is one claim's request (§5.5.1); null asks for the claim
// in the default manner.
type claimRequest struct {
	Essential bool              `json:"essential"`
	Value     json.RawMessage   `json:"value"`
	Values    []json.RawMessage `json:"values"`
}

// personClaimScope is the built-in scope that releases each claim about a
// person this server has (§5.4): a claim asked for alone is released when
// the client may ask for its scope, and the person consents to it as to
// that scope.
var personClaimScope = map[string]string{
	"preferred_username": oidc.ScopeProfile,
	"name":               oidc.ScopeProfile,
	"email":              oidc.ScopeEmail,
	"email_verified":     oidc.ScopeEmail,
	"groups":             oidc.ScopeGroups,
}

// parseClaimsRequest checks a claims parameter: a JSON object of at most
// maxClaimsParam bytes whose userinfo and id_token members, when present,
// are objects of at most maxClaimsMember claims, each null or an object.
// Other members are ignored (§5.5). Empty is no request (nil).
func parseClaimsRequest(param string) (*claimsRequest, *Error) {
	if param == "" {
		return nil, nil
	}
	if len(param) > maxClaimsParam {
		return nil, invalidRequest("claims is longer than " + strconv.Itoa(maxClaimsParam) + " bytes")
	}
	var c claimsRequest
	d := json.NewDecoder(bytes.NewReader([]byte(param)))
	if err := d.Decode(&c); err != nil || d.More() || !bytes.HasPrefix(bytes.TrimSpace([]byte(param)), []byte("{")) {
		return nil, invalidRequest("claims must be a JSON object with userinfo and id_token members (OpenID Connect Core §5.5)")
	}
	for member, claims := range map[string]map[string]*claimRequest{"userinfo": c.UserInfo, "id_token": c.IDToken} {
		if len(claims) > maxClaimsMember {
			return nil, invalidRequest("claims." + member + " names more than " + strconv.Itoa(maxClaimsMember) + " claims")
		}
		for name, r := range claims {
			if r != nil && r.Value != nil && r.Values != nil {
				return nil, invalidRequest("claim " + formparse.SafeName(name) + " has both value and values")
			}
		}
	}
	return &c, nil
}

// requestedSubject is the sub value the request insists on (§5.5.1), ""
// when it names none: the response must be about that person, or an
// error.
func (c *claimsRequest) requestedSubject() string {
	if c == nil {
		return ""
	}
	for _, claims := range []map[string]*claimRequest{c.IDToken, c.UserInfo} {
		if r := claims["sub"]; r != nil && len(r.Value) > 0 {
			var sub string
			if json.Unmarshal(r.Value, &sub) == nil {
				return sub
			}
		}
	}
	return ""
}

// demandsACR reports whether the request makes acr with particular values
// essential (§5.5.1.1). This server sets no acr, so it cannot meet that.
func (c *claimsRequest) demandsACR() bool {
	if c == nil {
		return false
	}
	r := c.IDToken["acr"]
	return r != nil && r.Essential && (len(r.Value) > 0 || len(r.Values) > 0)
}

// releasable keeps the person claims of a member that the client may
// have: those whose scope it may ask for. Unknown claims are left out,
// essential or not: §5.5.1 makes that no error.
func releasable(claims map[string]*claimRequest, client *config.Client) []string {
	var out []string
	for name := range claims {
		if sc, ok := personClaimScope[name]; ok && client.AllowsScope(sc) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// idTokenClaims and userinfoClaims are the claims a grant releases one by
// one in the ID token and at userinfo.
func (c *claimsRequest) idTokenClaims(client *config.Client) []string {
	if c == nil {
		return nil
	}
	return releasable(c.IDToken, client)
}

func (c *claimsRequest) userinfoClaims(client *config.Client) []string {
	if c == nil {
		return nil
	}
	return releasable(c.UserInfo, client)
}

// consentScopes are the scopes the person is asked about for a request:
// those it asks for, and the built-in scopes of the claims it asks for one
// by one.
func consentScopes(client *config.Client, scopes []string, claims *claimsRequest) []string {
	out := slices.Clone(scopes)
	for _, names := range [][]string{claims.idTokenClaims(client), claims.userinfoClaims(client)} {
		for _, name := range names {
			if sc := personClaimScope[name]; !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		}
	}
	return out
}

// storedClaims parses a claims parameter stored with a request or code; it was
// checked when the request came, so a parse error means nothing asked.
func storedClaims(stored string) *claimsRequest {
	c, _ := parseClaimsRequest(stored)
	return c
}
