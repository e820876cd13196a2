// Package config turns an AuthorizationServer and the objects around it
// (its Scopes, the OAuthClients that reference it, its signing-key Secret
// and its users Secret) into an immutable Snapshot that the token server's
// request paths read without locks, API calls, PEM parsing or hashing.
package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
	"github.com/gatehouse-dev/gatehouse/internal/claimmap"
	"github.com/gatehouse-dev/gatehouse/internal/endpoints"
	"github.com/gatehouse-dev/gatehouse/internal/jwtverify"
	"github.com/gatehouse-dev/gatehouse/internal/keyset"
	"github.com/gatehouse-dev/gatehouse/internal/oidc"
	"github.com/gatehouse-dev/gatehouse/internal/users"
	"github.com/gatehouse-dev/gatehouse/server/identity"
)

// Defaults match the AuthorizationServer CRD's defaults, for objects created
// before defaulting or built by hand in tests.
const (
	DefaultAccessTokenTTL     = oauthv1.DefaultAccessTokenLifetime
	DefaultRefreshTokenTTL    = oauthv1.DefaultRefreshTokenLifetime
	DefaultCodeTTL            = oauthv1.DefaultAuthorizationCodeLifetime
	DefaultDeviceCodeTTL      = oauthv1.DefaultDeviceCodeLifetime
	DefaultRequestURILifetime = oauthv1.DefaultRequestURILifetime
	DefaultPrepublishPeriod   = oauthv1.DefaultPrepublishPeriod
)

// Snapshot is everything a request needs to know about the server's
// configuration at one moment. It is never modified after Build returns.
// Snapshots that differ only in their clients share everything else (see
// SameServer), so one OAuthClient change publishes a new Snapshot at a cost
// that does not grow with the number of clients.
type Snapshot struct {
	Issuer    string
	Endpoints endpoints.Endpoints

	AccessTokenTTL  time.Duration
	RefreshTokenTTL time.Duration
	CodeTTL         time.Duration
	// DeviceCodeTTL is how long a device authorization (RFC 8628) waits
	// for the person; DefaultDeviceCodeTTL when zero (DeviceCodeLifetime).
	DeviceCodeTTL time.Duration
	// RefreshTokenRetry is spec.refreshTokenRetry, defaulted: which
	// clients' retry of a refresh whose answer was lost gets the same
	// successor (RefreshTokenRetry.Covers).
	RefreshTokenRetry oauthv1.RefreshTokenRetry
	// StorageType is the AuthorizationServer's spec.storage.type; the
	// store is chosen once at start.
	StorageType oauthv1.StorageType
	// PrepublishPeriod is how long a key is published before it signs.
	PrepublishPeriod time.Duration
	// RotationInterval is how long a key signs before its successor takes
	// over (spec.signing.rotationInterval); the metrics report when the
	// signing key is due for rotation from it.
	RotationInterval time.Duration

	// ClaimMapping is the AuthorizationServer's spec.claimMapping compiled
	// (nil for none); ClaimMappingErr why it did not compile, which
	// refuses tokens about people rather than issue them unmapped.
	ClaimMapping    *claimmap.Mapping
	ClaimMappingErr error

	// Branding is the AuthorizationServer's spec.branding: the pages'
	// name, logo, colours and default language; BrandLogo the image of
	// its logoConfigMapRef, which the server serves itself (nil without).
	Branding  oauthv1.Branding
	BrandLogo *BrandLogo

	// Clients by client_id.
	Clients ClientMap
	// Scopes by scope string.
	Scopes map[string]*Scope
	// ScopeNames is the sorted list of Scopes' names (scopes_supported).
	ScopeNames []string

	// Keys is the parsed key set; nil until the key Secret is usable.
	Keys *keyset.Set
	// Users is the users directory; nil when none is configured or the
	// users Secret is unusable (nobody can log in).
	Users *users.Directory
	// UsersUnavailable: spec.users names a Secret that is missing or
	// unusable right now. Users is nil, but the people in it have not been
	// removed, so their grants are not ended (see Subject).
	UsersUnavailable bool
	// Identity is where people log in from: the users Secret and the
	// upstream identity providers (identity.go).
	Identity *identity.Set
	// Rechecks are the identity providers' re-check timings, by name
	// (spec.identityProviders[].recheck); a provider not listed is not
	// re-checked.
	Rechecks map[string]Recheck
	// Unreachable are the identity providers the operator found
	// unreachable (condition IdentityProvider-<name>, reason
	// IdentityProviderUnreachable), by name, with its message: the login
	// page does not send anyone to them.
	Unreachable map[string]string

	// AssertionMaxExpiresIn is how far away a private_key_jwt assertion's
	// exp may be; DefaultAssertionMaxExpiresIn when zero.
	AssertionMaxExpiresIn time.Duration
	// RequirePAR: /authorize accepts only pushed requests (RFC 9126), of
	// every client.
	RequirePAR bool
	// RequestURILifetime is how long a pushed request's request_uri may
	// be used; DefaultRequestURILifetime when zero.
	RequestURILifetime time.Duration
	// ServiceAccountTokenMaxLifetime caps exp - iat of the service-account
	// tokens clients authenticate with (workload.go).
	ServiceAccountTokenMaxLifetime time.Duration
	// TrustedIssuers by name: spec.workloadIdentity.trustedIssuers.
	TrustedIssuers map[string]*TrustedIssuer
	// keySets fetches the JWK Sets clients and trusted issuers name by
	// URL; nil in snapshots built by hand.
	keySets *jwtverify.Registry

	// Problems are configuration errors found while building, for logs and
	// readiness; the snapshot is still usable for what is not affected.
	Problems []string

	// generation numbers the server-wide part a Builder built (everything
	// but Clients and their problems); 0 in snapshots built by hand.
	generation uint64
}

// DeviceCodeLifetime is DeviceCodeTTL, or its default for a snapshot
// built without it.
func (s *Snapshot) DeviceCodeLifetime() time.Duration {
	if s.DeviceCodeTTL <= 0 {
		return DefaultDeviceCodeTTL
	}
	return s.DeviceCodeTTL
}

// PushedRequestLifetime is RequestURILifetime, or its default for a
// snapshot built without it.
func (s *Snapshot) PushedRequestLifetime() time.Duration {
	if s.RequestURILifetime <= 0 {
		return DefaultRequestURILifetime
	}
	return s.RequestURILifetime
}

// SameServer reports whether o has the same server-wide part as s (issuer,
// lifetimes, scopes, keys, users) and may differ only in its clients, so
// that what is derived from that part (metadata, JWKS) can be kept.
func (s *Snapshot) SameServer(o *Snapshot) bool {
	return s == o || (s != nil && o != nil && s.generation != 0 && s.generation == o.generation)
}

// Client is an OAuthClient the server serves.
type Client struct {
	ID          string
	DisplayName string
	Public      bool
	// AuthMethod is the client's method, the first of AuthMethods.
	AuthMethod oauthv1.TokenEndpointAuthMethod
	// AuthMethods are every method the client may authenticate with
	// (OAuthClient.AuthMethods); when empty, AuthMethod alone.
	AuthMethods []oauthv1.TokenEndpointAuthMethod
	// RedirectURIs are matched exactly (RFC 9700 §4.1.3).
	RedirectURIs []string
	// PostLogoutRedirectURIs are matched like RedirectURIs.
	PostLogoutRedirectURIs []string
	GrantTypes             map[oauthv1.GrantType]bool
	// AllowedScopes in spec order.
	AllowedScopes []string
	Audience      []string
	RequirePKCE   bool
	SkipConsent   bool
	SecretHashes  []SecretHash
	// Namespace is the OAuthClient's namespace; UID its uid, for the
	// Events about it.
	Namespace string
	UID       types.UID
	// Backchannel is where the client receives logout tokens (OpenID
	// Connect Back-Channel Logout 1.0); nil when it does not.
	Backchannel *Backchannel
	// Assertion is the credential of a client without a secret
	// (spec.authentication); nil for the others.
	Assertion *ClientAssertion
	// IDTokenAlg is spec.idTokenSignedResponseAlg; empty for the default,
	// RS256.
	IDTokenAlg string
	// TokenExchange is what the client may exchange (RFC 8693); nil when
	// it may not.
	TokenExchange *TokenExchange
	// RequirePAR: /authorize accepts only the client's pushed requests
	// (RFC 9126).
	RequirePAR bool
	// TokenLifetimes are the client's own lifetimes (spec.tokenLifetimes,
	// shared with the informer's copy, never modified); nil for the
	// server's. Read them through Snapshot.Lifetimes.
	TokenLifetimes *oauthv1.ClientTokenLifetimes
	// CORSOrigins are spec.allowedCORSOrigins (ClientMap.AllowsOrigin).
	CORSOrigins []string
	// LogoURI, PolicyURI and TOSURI are shown on the consent page.
	LogoURI, PolicyURI, TOSURI string
	// ClaimMapping is spec.claimMapping compiled (nil for none);
	// ClaimMappingErr why it did not compile, which refuses the client's
	// tokens about people rather than issue them unmapped.
	ClaimMapping    *claimmap.Mapping
	ClaimMappingErr error
}

// Lifetimes are the lifetimes of c's tokens: its own where it sets them,
// the server's otherwise (the API package decides, for the operator too).
// A nil c gets the server's.
func (s *Snapshot) Lifetimes(c *Client) oauthv1.Lifetimes {
	server := oauthv1.Lifetimes{AccessToken: s.AccessTokenTTL, IDToken: s.AccessTokenTTL, RefreshToken: s.RefreshTokenTTL}
	if c == nil {
		return server
	}
	return c.TokenLifetimes.Resolve(server)
}

// Backchannel is an OAuthClient's spec.backchannelLogout.
type Backchannel struct {
	URI             string
	SessionRequired bool
}

// Name is the OAuthClient's name: its client_id is <namespace>.<name>.
func (c *Client) Name() string { return strings.TrimPrefix(c.ID, c.Namespace+".") }

// AcceptsAuthMethod reports whether the client may authenticate with m.
func (c *Client) AcceptsAuthMethod(m oauthv1.TokenEndpointAuthMethod) bool {
	if len(c.AuthMethods) == 0 {
		return c.AuthMethod == m
	}
	return slices.Contains(c.AuthMethods, m)
}

// TokenExchange is an OAuthClient's spec.tokenExchange.
type TokenExchange struct {
	SubjectTokens      []ExchangeableToken
	ActorTokens        []ExchangeableToken
	AllowImpersonation bool
}

// ExchangeableToken is tokens a client may present in an exchange.
type ExchangeableToken struct {
	Type oauthv1.ExchangeableTokenType
	// Audiences are the APIs the client serves, kept only where a Scope
	// for that API admits the client (as for Client.Audience).
	Audiences []string
	// ServiceAccountSubjects are the subjects
	// (system:serviceaccount:<namespace>:<name>) of the ServiceAccounts
	// whose tokens the client may present (type ServiceAccount).
	ServiceAccountSubjects []string
	// ServiceAccountUIDs are the UIDs, by subject, of those of them the
	// operator found (status.exchangeServiceAccounts): only tokens of
	// that very ServiceAccount are accepted, so a deleted and re-created
	// one's old tokens are refused, and a missing one's all are.
	ServiceAccountUIDs map[string]string
	// Issuer and Subjects: the trusted issuer and the exact subjects
	// whose tokens the client may present (type TrustedIssuer).
	Issuer   string
	Subjects []string
}

// SecretHash is a client-secret hash the server accepts until NotAfter
// (zero: no end).
type SecretHash struct {
	Hash     string
	NotAfter time.Time
}

// AllowsScope reports whether the client may request scope.
func (c *Client) AllowsScope(scope string) bool { return slices.Contains(c.AllowedScopes, scope) }

// HasRedirectURI reports whether uri matches a registered redirect URI
// (RedirectURIMatches: exact, but any port for 127.0.0.1 and [::1]).
func (c *Client) HasRedirectURI(uri string) bool {
	return slices.ContainsFunc(c.RedirectURIs, func(r string) bool { return RedirectURIMatches(r, uri) })
}

// HasPostLogoutRedirectURI reports whether uri matches a registered
// post-logout redirect URI, as HasRedirectURI does.
func (c *Client) HasPostLogoutRedirectURI(uri string) bool {
	return slices.ContainsFunc(c.PostLogoutRedirectURIs, func(r string) bool { return RedirectURIMatches(r, uri) })
}

// Scope is a Scope resource of the server.
type Scope struct {
	Name            string
	Description     string
	Audience        string
	RequiresConsent bool
	// Builtin marks the OpenID Connect scopes (oidc.Scopes), which every
	// server defines without a Scope object and every client may list.
	Builtin bool

	namespace string
	from      oauthv1.FromNamespaces
}

// audienceAdmits says whether some Scope for the API aud admits clients
// from namespace.
func (s *Snapshot) audienceAdmits(aud, namespace string) bool {
	for _, sc := range s.Scopes {
		if sc.Audience == aud && sc.admits(namespace) {
			return true
		}
	}
	return false
}

// admits applies the Scope's allowedClients policy to a client's
// namespace as far as the server can: a Selector needs namespace labels,
// which the server does not read (it has no access to namespaces), so
// there the operator's Ready verdict stands alone.
func (sc *Scope) admits(namespace string) bool {
	if sc.Builtin {
		return true
	}
	switch sc.from {
	case oauthv1.NamespacesFromAll, oauthv1.NamespacesFromSelector:
		return true
	default:
		return namespace == sc.namespace
	}
}

// BuiltinScopes are the OpenID Connect scopes every server defines. Each
// releases something about the person, so each needs consent.
func BuiltinScopes() []*Scope {
	out := make([]*Scope, 0, len(oidc.Scopes))
	for _, b := range oidc.Scopes {
		out = append(out, &Scope{Name: b.Name, Description: b.Description, RequiresConsent: true, Builtin: true})
	}
	return out
}

// Inputs are the objects a Snapshot is built from. Secrets may be nil when
// they do not exist (yet).
type Inputs struct {
	Server      *oauthv1.AuthorizationServer
	Scopes      []oauthv1.Scope
	Clients     []oauthv1.OAuthClient
	KeysSecret  *corev1.Secret
	UsersSecret *corev1.Secret
	// IdentitySecrets are the identity providers' Secrets, by name.
	IdentitySecrets map[string]*corev1.Secret
	// ConfigMaps are the trusted issuers' CA ConfigMaps and the brand's
	// logo ConfigMap, by name.
	ConfigMaps map[string]*corev1.ConfigMap
}

// Builder builds Snapshots, re-parsing a Secret only when its
// resourceVersion (or, without one, its content) changes: parsing keys and
// users is slow next to rebuilding the client and scope maps. Besides Build,
// it updates a snapshot incrementally: SetServer for the server-wide
// inputs, SetClient and DeleteClient for one OAuthClient (incremental.go).
// A Builder is not safe for concurrent use; the Snapshots it returns are.
type Builder struct {
	// KeySets fetches the JWK Sets that clients (privateKeyJWT.jwksURI)
	// and trusted issuers name by URL; without it those clients and
	// issuers cannot be verified.
	KeySets *jwtverify.Registry

	keysVersion  string
	keys         *keyset.Set
	keysErr      error
	lastGoodKeys *keyset.Set
	usersVersion string
	users        *users.Directory
	usersErr     error
	identity     identityCache

	// server is the last server-wide part (Clients unset), nil without an
	// AuthorizationServer; target is the server the clients are kept for.
	server  *Snapshot
	target  types.NamespacedName
	clients clientState
}

// Build makes a Snapshot of in alone, forgetting the clients of earlier
// calls. It fails only without an AuthorizationServer; other problems are
// recorded in Snapshot.Problems.
func (b *Builder) Build(in Inputs) (*Snapshot, error) {
	b.clients, b.target = clientState{}, types.NamespacedName{}
	if _, err := b.SetServer(in); err != nil {
		return nil, err
	}
	for i := range in.Clients {
		b.SetClient(&in.Clients[i])
	}
	return b.Snapshot(), nil
}

// buildServer builds the server-wide part of a Snapshot: everything but the
// clients.
func (b *Builder) buildServer(in Inputs) (*Snapshot, error) {
	if in.Server == nil {
		return nil, fmt.Errorf("the AuthorizationServer does not exist")
	}
	as := in.Server
	s := &Snapshot{
		Issuer:             as.Spec.Issuer,
		Endpoints:          endpoints.For(as.Spec.Issuer),
		AccessTokenTTL:     as.AccessTokenLifetime(),
		RefreshTokenTTL:    as.RefreshTokenLifetime(),
		RefreshTokenRetry:  as.RefreshTokenRetryMode(),
		CodeTTL:            as.AuthorizationCodeLifetime(),
		DeviceCodeTTL:      as.DeviceCodeLifetime(),
		PrepublishPeriod:   as.PrepublishPeriod(),
		RequirePAR:         as.Spec.PushedAuthorizationRequests.Required,
		RequestURILifetime: as.RequestURILifetime(),
		RotationInterval:   as.RotationInterval(),
		Branding:           as.Spec.Branding,
		Scopes:             map[string]*Scope{},
		StorageType:        cmp.Or(as.Spec.Storage.Type, oauthv1.StorageMemory),
		keySets:            b.KeySets,
	}

	b.buildScopes(s, as, in.Scopes)
	if s.ClaimMapping, s.ClaimMappingErr = claimmap.Compile(as.Spec.ClaimMapping); s.ClaimMappingErr != nil {
		s.Problems = append(s.Problems, "spec.claimMapping: "+s.ClaimMappingErr.Error())
	}

	if in.KeysSecret == nil {
		s.Problems = append(s.Problems, fmt.Sprintf("signing-key Secret %s does not exist yet", keyset.SecretName(as.Name)))
	} else {
		if v := version(in.KeysSecret, keyset.SecretDataKey); v != b.keysVersion {
			b.keysVersion = v
			b.keys, b.keysErr = keyset.Parse(in.KeysSecret.Data[keyset.SecretDataKey])
		}
		if b.keysErr != nil {
			// Keep signing with the last good set: a bad edit of the
			// Secret must not take every replica down at once.
			s.Problems = append(s.Problems, fmt.Sprintf("signing-key Secret: %v", b.keysErr))
			s.Keys = b.lastGoodKeys
		} else {
			s.Keys = b.keys
			b.lastGoodKeys = b.keys
		}
	}

	if as.Spec.Users != nil {
		switch {
		case in.UsersSecret == nil:
			s.UsersUnavailable = true
			s.Problems = append(s.Problems, fmt.Sprintf("users Secret %s does not exist", as.Spec.Users.SecretRef.Name))
		default:
			if v := version(in.UsersSecret, users.SecretDataKey); v != b.usersVersion {
				b.usersVersion = v
				b.users, b.usersErr = users.Parse(in.UsersSecret.Data[users.SecretDataKey])
			}
			if b.usersErr != nil {
				s.UsersUnavailable = true
				s.Problems = append(s.Problems, fmt.Sprintf("users Secret %s: %v", in.UsersSecret.Name, b.usersErr))
			} else {
				s.Users = b.users
			}
		}
	}
	b.buildIdentity(s, as, in.IdentitySecrets)
	b.buildWorkloadIdentity(s, as, in.ConfigMaps)
	if logo, err := brandLogo(as, in.ConfigMaps); err != nil {
		s.Problems = append(s.Problems, err.Error())
	} else {
		s.BrandLogo = logo
	}
	return s, nil
}

func (b *Builder) buildScopes(s *Snapshot, as *oauthv1.AuthorizationServer, scopes []oauthv1.Scope) {
	// Oldest first, so that when two Scopes claim one name (the operator
	// marks the newer one as a conflict) the same one wins on every replica.
	sorted := slices.Clone(scopes)
	oauthv1.SortScopeClaims(sorted)
	// The built-in scopes come first: a Scope object cannot redefine
	// openid or the claims a relying party trusts.
	for _, b := range BuiltinScopes() {
		s.Scopes[b.Name] = b
		s.ScopeNames = append(s.ScopeNames, b.Name)
	}
	for i := range sorted {
		sc := &sorted[i]
		if sc.Namespace != as.Namespace || sc.Spec.ServerRef.Name != as.Name || sc.DeletionTimestamp != nil {
			continue
		}
		if oidc.IsBuiltin(string(sc.Spec.Name)) {
			s.Problems = append(s.Problems, fmt.Sprintf("Scope %s/%s: %q is a built-in OpenID Connect scope; the Scope is ignored", sc.Namespace, sc.Name, sc.Spec.Name))
			continue
		}
		if c := meta.FindStatusCondition(sc.Status.Conditions, oauthv1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse {
			continue
		}
		name := string(sc.Spec.Name)
		if _, dup := s.Scopes[name]; dup {
			continue
		}
		s.Scopes[name] = &Scope{
			Name:            name,
			Description:     sc.Spec.Description,
			Audience:        string(sc.Spec.Audience),
			RequiresConsent: sc.Spec.RequiresConsent == nil || *sc.Spec.RequiresConsent,
			namespace:       sc.Namespace,
			from:            sc.Spec.AllowedClients.Namespaces.From,
		}
		s.ScopeNames = append(s.ScopeNames, name)
	}
	slices.Sort(s.ScopeNames)
}

// References reports whether an OAuthClient's serverRef points at the
// server namespace/name; serverRef.namespace defaults to the client's own.
func References(oc *oauthv1.OAuthClient, namespace, name string) bool {
	return oc.References(namespace, name)
}

// SubjectStatus is what the identity sources say of a token subject.
type SubjectStatus int

const (
	// SubjectActive means a source still lists the person.
	SubjectActive SubjectStatus = iota
	// SubjectRemoved means no source lists the person any more; grants made
	// to them end.
	SubjectRemoved
	// SubjectUndetermined means a source that may list the person cannot be
	// read right now (e.g. its Secret is being replaced). Refuse for now,
	// but do not end the grant: the person was not removed.
	SubjectUndetermined
)

// Subject says whether sub, the subject of a grant that outlives the
// login it started with (a refresh-token family), is still a person who
// may get tokens. Every such grant asks here before issuing, and every
// identity source must answer here: the users Secret now, upstream
// identity providers later (which answer from what they cached at login,
// as the design forbids calling an upstream outside login). It reads
// memory only: it runs on the token path.
func (s *Snapshot) Subject(sub string) SubjectStatus {
	if provider, ok := identity.ProviderOf(sub); ok {
		return s.upstreamSubject(provider)
	}
	switch {
	case s.Users != nil:
		if _, ok := s.Users.BySubject(sub); ok {
			return SubjectActive
		}
		return SubjectRemoved
	case s.UsersUnavailable:
		return SubjectUndetermined
	default:
		// No identity source is configured: nobody can be a subject.
		return SubjectRemoved
	}
}

// SigningKey returns the key that signs at now, if the key set has one.
func (s *Snapshot) SigningKey(now time.Time) (*keyset.Key, bool) {
	if s.Keys == nil {
		return nil, false
	}
	return s.Keys.SigningKey(now)
}

// IDTokenKey returns the key that signs ID tokens for a client that wants
// alg (keyset.Set.IDTokenKey).
func (s *Snapshot) IDTokenKey(alg string, now time.Time) (*keyset.Key, bool) {
	if s.Keys == nil {
		return nil, false
	}
	return s.Keys.IDTokenKey(alg, now)
}

func version(s *corev1.Secret, key string) string {
	if s.ResourceVersion != "" {
		return s.Namespace + "/" + s.Name + "@" + s.ResourceVersion
	}
	return s.Namespace + "/" + s.Name + "#" + string(s.Data[key])
}
