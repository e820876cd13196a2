package identity

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/go-ldap/ldap/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-dev/gatehouse/internal/tracing"
)

// LDAPConfig is an LDAP directory (the AuthorizationServer's
// identityProviders[].ldap, with its Secrets read).
type LDAPConfig struct {
	Name, DisplayName string
	// Host is host:port.
	Host string
	// StartTLS upgrades a plain connection (RFC 4511 §4.14); otherwise the
	// connection is TLS from the start (ldaps).
	StartTLS bool
	// TLS verifies the directory (RootCAs: the CA, or nil for the
	// system's); ServerName is taken from Host when empty.
	TLS          *tls.Config
	BindDN       string
	BindPassword string

	UserBaseDN, UserFilter, UsernameAttr, IDAttr, EmailAttr, NameAttr string
	// GroupBaseDN empty: no group search.
	GroupBaseDN, GroupFilter, MemberAttr, GroupNameAttr string
	// Timeout bounds each dial and request; 10s when zero.
	Timeout time.Duration
}

// LDAPSource logs people in against an LDAP directory: it finds the entry
// of the typed username with the service account, binds as that entry with
// the typed password (the directory checks it), then reads its groups.
type LDAPSource struct{ cfg LDAPConfig }

// NewLDAP makes an LDAPSource; it does not connect.
func NewLDAP(cfg LDAPConfig) *LDAPSource {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.IDAttr == "" {
		cfg.IDAttr = cfg.UsernameAttr
	}
	cfg.TLS = cfg.TLS.Clone()
	if cfg.TLS == nil {
		cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.TLS.ServerName == "" {
		if host, _, err := net.SplitHostPort(cfg.Host); err == nil {
			cfg.TLS.ServerName = host
		}
	}
	return &LDAPSource{cfg: cfg}
}

// Name implements Source.
func (s *LDAPSource) Name() string { return s.cfg.Name }

// DisplayName implements Source.
func (s *LDAPSource) DisplayName() string { return s.cfg.DisplayName }

// Check connects and binds as the service account: what the status
// condition reports.
func (s *LDAPSource) Check(ctx context.Context) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return nil
}

// Authenticate implements PasswordSource.
func (s *LDAPSource) Authenticate(ctx context.Context, username, password string) (Person, error) {
	// An empty password would be an unauthenticated bind (RFC 4513
	// §5.1.2), which many directories answer with success.
	if username == "" || password == "" {
		return Person{}, ErrInvalidCredentials
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return Person{}, err
	}
	defer conn.Close()
	entry, err := s.findUser(conn, username)
	if err != nil {
		return Person{}, err
	}
	if err := conn.Bind(entry.DN, password); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return Person{}, ErrInvalidCredentials
		}
		return Person{}, fmt.Errorf("%w: ldap %s: binding as the user: %v", ErrUnavailable, s.cfg.Name, err)
	}
	return s.person(conn, entry)
}

// person is the Person of a user's entry, with their groups. The
// connection is bound as the service account afterwards.
func (s *LDAPSource) person(conn ldapConn, entry *ldap.Entry) (Person, error) {
	id := entry.GetAttributeValue(s.cfg.IDAttr)
	if id == "" {
		return Person{}, fmt.Errorf("%w: ldap %s: the user's entry has no %s attribute (idAttribute)", ErrUnavailable, s.cfg.Name, s.cfg.IDAttr)
	}
	p := Person{
		Subject:  UpstreamSubject(s.cfg.Name, id),
		Username: entry.GetAttributeValue(s.cfg.UsernameAttr),
		Name:     entry.GetAttributeValue(s.cfg.NameAttr),
		Email:    entry.GetAttributeValue(s.cfg.EmailAttr),
		Handle:   Handle{ID: id},
	}
	var err error
	if p.Groups, err = s.groups(conn, entry.DN); err != nil {
		return Person{}, err
	}
	return p, nil
}

// Recheck implements Rechecker: the person's entry is searched for by
// its idAttribute value with userSearch's filter, as the service account.
// No entry (deleted, or no longer matching the filter: a disabled
// account) is ErrGone; their groups are read again.
func (s *LDAPSource) Recheck(ctx context.Context, subject string, h Handle) (Person, error) {
	if h.ID == "" {
		return Person{}, fmt.Errorf("%w: ldap %s: nothing identifies the person (they signed in before re-checks existed)", ErrUnavailable, s.cfg.Name)
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return Person{}, err
	}
	defer conn.Close()
	filter := fmt.Sprintf("(&%s(%s=%s))", s.cfg.UserFilter, s.cfg.IDAttr, ldap.EscapeFilter(h.ID))
	req := ldap.NewSearchRequest(s.cfg.UserBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, int(s.cfg.Timeout/time.Second), false,
		filter, []string{s.cfg.UsernameAttr, s.cfg.IDAttr, s.cfg.EmailAttr, s.cfg.NameAttr}, nil)
	res, err := conn.Search(req)
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		// A misconfigured base removes nobody.
		return Person{}, fmt.Errorf("%w: ldap %s: the user base %s does not exist", ErrUnavailable, s.cfg.Name, s.cfg.UserBaseDN)
	case err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded):
		return Person{}, fmt.Errorf("%w: ldap %s: searching for the user again: %v", ErrUnavailable, s.cfg.Name, err)
	case err != nil || len(res.Entries) > 1:
		return Person{}, fmt.Errorf("%w: ldap %s: more than one entry has the person's %s", ErrGone, s.cfg.Name, s.cfg.IDAttr)
	case len(res.Entries) == 0:
		return Person{}, fmt.Errorf("%w: ldap %s: no entry matching the user filter has the person's %s any more", ErrGone, s.cfg.Name, s.cfg.IDAttr)
	}
	p, err := s.person(conn, res.Entries[0])
	if err != nil {
		return Person{}, err
	}
	if p.Subject != subject {
		return Person{}, fmt.Errorf("%w: ldap %s: the entry found is someone else's", ErrGone, s.cfg.Name)
	}
	return p, nil
}

// connect dials, secures the connection and binds as the service account.
// The context's end closes the connection, ending whatever waits on it.
func (s *LDAPSource) connect(ctx context.Context) (ldapConn, error) {
	dialer := &net.Dialer{Timeout: s.cfg.Timeout}
	var lc *ldap.Conn
	var err error
	if s.cfg.StartTLS {
		lc, err = ldap.DialURL("ldap://"+s.cfg.Host, ldap.DialWithDialer(dialer))
	} else {
		lc, err = ldap.DialURL("ldaps://"+s.cfg.Host, ldap.DialWithDialer(dialer), ldap.DialWithTLSConfig(s.cfg.TLS))
	}
	if err != nil {
		return ldapConn{}, fmt.Errorf("%w: ldap %s: connecting to %s: %v", ErrUnavailable, s.cfg.Name, s.cfg.Host, err)
	}
	lc.SetTimeout(s.cfg.Timeout)
	conn := ldapConn{Conn: lc, ctx: ctx, src: s}
	stop := context.AfterFunc(ctx, func() { lc.Close() })
	fail := func(what string, err error) (ldapConn, error) {
		stop()
		lc.Close()
		return ldapConn{}, fmt.Errorf("%w: ldap %s: %s: %w", ErrUnavailable, s.cfg.Name, what, err)
	}
	if s.cfg.StartTLS {
		if err := conn.StartTLS(s.cfg.TLS); err != nil {
			return fail("StartTLS", err)
		}
	}
	if err := conn.Bind(s.cfg.BindDN, s.cfg.BindPassword); err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return fail("binding as "+s.cfg.BindDN, ErrCredentialsRejected)
		}
		return fail("binding as "+s.cfg.BindDN, err)
	}
	return conn, nil
}

// findUser returns the one entry of username. The username is escaped
// (RFC 4515 §3), so "*)(uid=*" matches only a user literally named so.
func (s *LDAPSource) findUser(conn ldapConn, username string) (*ldap.Entry, error) {
	filter := fmt.Sprintf("(&%s(%s=%s))", s.cfg.UserFilter, s.cfg.UsernameAttr, ldap.EscapeFilter(username))
	req := ldap.NewSearchRequest(s.cfg.UserBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, int(s.cfg.Timeout/time.Second), false,
		filter, []string{s.cfg.UsernameAttr, s.cfg.IDAttr, s.cfg.EmailAttr, s.cfg.NameAttr}, nil)
	res, err := conn.Search(req)
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return nil, fmt.Errorf("%w: ldap %s: searching for the user: %v", ErrUnavailable, s.cfg.Name, err)
	}
	// None, or more than one (an ambiguous username never logs in).
	if res == nil || len(res.Entries) != 1 || err != nil {
		return nil, ErrInvalidCredentials
	}
	return res.Entries[0], nil
}

// groups reads the names of the groups that list dn as a member, as the
// service account (the user may not be allowed to search groups).
func (s *LDAPSource) groups(conn ldapConn, dn string) ([]string, error) {
	if s.cfg.GroupBaseDN == "" {
		return nil, nil
	}
	if err := conn.Bind(s.cfg.BindDN, s.cfg.BindPassword); err != nil {
		return nil, fmt.Errorf("%w: ldap %s: binding as %s again: %v", ErrUnavailable, s.cfg.Name, s.cfg.BindDN, err)
	}
	filter := fmt.Sprintf("(&%s(%s=%s))", s.cfg.GroupFilter, s.cfg.MemberAttr, ldap.EscapeFilter(dn))
	req := ldap.NewSearchRequest(s.cfg.GroupBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, int(s.cfg.Timeout/time.Second), false,
		filter, []string{s.cfg.GroupNameAttr}, nil)
	res, err := conn.Search(req)
	if err != nil {
		return nil, fmt.Errorf("%w: ldap %s: searching for groups: %v", ErrUnavailable, s.cfg.Name, err)
	}
	var out []string
	for _, e := range res.Entries {
		if g := e.GetAttributeValue(s.cfg.GroupNameAttr); g != "" {
			out = append(out, g)
		}
	}
	return out, nil
}

// ldapConn is a connection to the directory whose binds and searches are
// client spans ("ldap bind", "ldap search") of the request they are made
// for, when it is traced and recorded (tracing.Child). Neither the DNs
// nor the filters, which name the person, are in the spans.
type ldapConn struct {
	*ldap.Conn
	ctx context.Context
	src *LDAPSource
}

func (c ldapConn) Bind(dn, password string) error {
	span := c.start("ldap bind")
	err := c.Conn.Bind(dn, password)
	// A wrong password is the directory's answer, not its failure.
	c.end(span, err, ldap.LDAPResultInvalidCredentials)
	return err
}

func (c ldapConn) Search(req *ldap.SearchRequest) (*ldap.SearchResult, error) {
	span := c.start("ldap search")
	res, err := c.Conn.Search(req)
	if span != nil && res != nil {
		span.SetAttributes(attribute.Int("gatehouse.ldap.entries", len(res.Entries)))
	}
	c.end(span, err, ldap.LDAPResultSizeLimitExceeded)
	return res, err
}

func (c ldapConn) start(name string) trace.Span {
	_, span := tracing.Child(c.ctx, name, trace.SpanKindClient)
	if span != nil {
		span.SetAttributes(attribute.String("server.address", c.src.cfg.Host),
			attribute.String("gatehouse.identity_provider", c.src.cfg.Name))
	}
	return span
}

// end ends span, failed unless err is nil or the result code answered.
func (c ldapConn) end(span trace.Span, err error, answered uint16) {
	if err != nil && ldap.IsErrorWithCode(err, answered) {
		err = nil
	}
	tracing.End(span, err)
}
