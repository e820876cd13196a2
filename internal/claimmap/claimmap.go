// Package claimmap compiles and evaluates the CEL claim mappings of
// AuthorizationServers and OAuthClients (spec.claimMapping): the operator
// compiles them when an object is applied, to report errors in its
// status; the token server compiles them once per configuration change and
// evaluates them per token (Apply) and per login (Admit), within a fixed
// cost budget.
package claimmap

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"

	oauthv1 "github.com/gatehouse-dev/gatehouse/api/v1alpha1"
)

// CostBudget bounds each expression's estimated worst-case cost, computed
// at compile time (as kube-apiserver does for its own CEL) for a person
// with MaxGroups groups and strings of MaxStringLength bytes. A person
// beyond those sizes is refused at evaluation, so no evaluation can cost
// more than the budget. (cel-go's runtime cost tracker is not used: in
// this version it makes a walk over a list quadratic, 130 ms for 4000
// groups against 2 ms without it.)
const CostBudget = 1_000_000

// The sizes the compile-time estimate assumes and evaluation enforces.
const (
	MaxGroups       = 1000
	MaxStringLength = 1024
)

// User is what an expression reads as user.subject, user.username,
// user.name, user.email, user.emailVerified and user.groups.
type User struct {
	Subject, Username, Name, Email string
	EmailVerified                  bool
	Groups                         []string
}

// Client is what an expression reads as client.id and client.namespace.
type Client struct {
	ID, Namespace string
}

// Reserved are the claims the server sets itself, which no mapping may
// add (the CRD refuses them too).
var Reserved = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "auth_time", "nonce", "acr", "amr",
	"azp", "at_hash", "c_hash", "sid", "scope", "client_id", "cnf", "act", "may_act", "grant_id", "typ",
	"events", "userinfo_claims", "groups", "preferred_username", "name", "email", "email_verified"}

// Variables are the names an expression may read.
var Variables = []string{"user.subject", "user.username", "user.name", "user.email", "user.emailVerified",
	"user.groups", "client.id", "client.namespace"}

// The variables are declared by their qualified names (user.groups, not
// a user object), so that a misspelt field is a compile-time error and
// evaluation reads plain values: a Go struct behind CEL's reflection
// walked a list in quadratic time.
var env = func() *cel.Env {
	e, err := cel.NewEnv(
		cel.Variable("user.subject", cel.StringType),
		cel.Variable("user.username", cel.StringType),
		cel.Variable("user.name", cel.StringType),
		cel.Variable("user.email", cel.StringType),
		cel.Variable("user.emailVerified", cel.BoolType),
		cel.Variable("user.groups", cel.ListType(cel.StringType)),
		cel.Variable("client.id", cel.StringType),
		cel.Variable("client.namespace", cel.StringType),
		// Not ext.Lists: its lists.range(n) allocates n elements before
		// any cost is counted.
		ext.Strings(), ext.Sets(),
	)
	if err != nil {
		panic(err)
	}
	return e
}()

// Mapping is a compiled spec.claimMapping; a nil *Mapping maps nothing.
type Mapping struct {
	groups cel.Program
	claims []claim
	rules  []rule
}

type rule struct {
	field, message string
	prg            cel.Program
}

type claim struct {
	name string
	prg  cel.Program
}

// Compile checks m's expressions (syntax, types, the names they use and
// their worst-case cost) and returns them ready to evaluate; nil for a nil
// or empty m. The error names the field and carries CEL's message.
func Compile(m *oauthv1.ClaimMapping) (*Mapping, error) {
	if m == nil || m.Groups == "" && len(m.Claims) == 0 && len(m.LoginRules) == 0 {
		return nil, nil
	}
	out := &Mapping{}
	var errs []error
	if m.Groups != "" {
		prg, err := compile(m.Groups, cel.ListType(cel.StringType))
		if err != nil {
			errs = append(errs, fmt.Errorf("claimMapping.groups: %w", err))
		}
		out.groups = prg
	}
	for i, c := range m.Claims {
		if slices.Contains(Reserved, c.Name) {
			errs = append(errs, fmt.Errorf("claimMapping.claims[%d]: %q is a claim the server sets itself", i, c.Name))
			continue
		}
		prg, err := compile(c.Expression, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("claimMapping.claims[%d] (%s): %w", i, c.Name, err))
			continue
		}
		out.claims = append(out.claims, claim{name: c.Name, prg: prg})
	}
	for i, lr := range m.LoginRules {
		field := fmt.Sprintf("claimMapping.loginRules[%d]", i)
		prg, err := compile(lr.Expression, cel.BoolType)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
			continue
		}
		out.rules = append(out.rules, rule{field: "spec." + field, message: lr.Message, prg: prg})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// compile compiles one expression; want, when set, is the only type it
// may give (dyn is accepted and checked at evaluation).
func compile(src string, want *cel.Type) (cel.Program, error) {
	ast, iss := env.Compile(src)
	if err := iss.Err(); err != nil {
		if strings.Contains(err.Error(), "undeclared reference") {
			return nil, fmt.Errorf("%w\n(the variables are %s)", err, strings.Join(Variables, ", "))
		}
		return nil, err
	}
	out := ast.OutputType()
	switch {
	case want != nil && !out.IsExactType(want) && out != cel.DynType:
		return nil, fmt.Errorf("gives %s, not %s", out, want)
	case want == nil && !claimType(out):
		return nil, fmt.Errorf("gives %s, not a string, bool, int or list of strings", out)
	}
	cost, err := env.EstimateCost(ast, estimator{})
	if err != nil {
		return nil, fmt.Errorf("estimating its cost: %w", err)
	}
	if cost.Max > CostBudget {
		return nil, fmt.Errorf("its estimated worst-case cost %d (for %d groups) exceeds the budget of %d: filter or bound the lists it walks", cost.Max, MaxGroups, CostBudget)
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, err
	}
	return prg, nil
}

func claimType(t *cel.Type) bool {
	for _, ok := range []*cel.Type{cel.StringType, cel.BoolType, cel.IntType, cel.ListType(cel.StringType), cel.DynType, cel.NullType} {
		if t.IsExactType(ok) {
			return true
		}
	}
	return false
}

// estimator sizes every list at MaxGroups elements and every string at
// MaxStringLength bytes: what the cost budget is checked against.
type estimator struct{}

func (estimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	switch n.Type().Kind() {
	case types.ListKind:
		return &checker.SizeEstimate{Min: 0, Max: MaxGroups}
	case types.StringKind:
		return &checker.SizeEstimate{Min: 0, Max: MaxStringLength}
	}
	return nil
}

func (estimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// Result is what a mapping gives for one person.
type Result struct {
	// Groups replace the person's when GroupsMapped.
	Groups       []string
	GroupsMapped bool
	// Claims are the added claims, by name: string, bool, int64 or
	// []string values.
	Claims map[string]any
}

// Apply evaluates the server's mapping, then the client's on its result
// (either may be nil), for u and c. An expression that fails, costs more
// than the budget or gives a value of the wrong type is an error: the
// caller refuses the token rather than issue unmapped claims.
func Apply(server, client *Mapping, u User, c Client) (Result, error) {
	var r Result
	if !server.maps() && !client.maps() {
		return r, nil
	}
	if err := withinSizes(u, c); err != nil {
		return r, err
	}
	for _, m := range []*Mapping{server, client} {
		if m == nil {
			continue
		}
		if r.GroupsMapped {
			u.Groups = r.Groups
		}
		vars := newActivation(&u, &c)
		if m.groups != nil {
			g, err := m.mapGroups(vars)
			if err != nil {
				return Result{}, err
			}
			r.Groups, r.GroupsMapped = g, true
		}
		for _, cl := range m.claims {
			v, _, err := cl.prg.Eval(vars)
			if err != nil {
				return Result{}, fmt.Errorf("claimMapping claim %s: %w", cl.name, err)
			}
			val, err := claimValue(v)
			if err != nil {
				return Result{}, fmt.Errorf("claimMapping claim %s: %w", cl.name, err)
			}
			if r.Claims == nil {
				r.Claims = map[string]any{}
			}
			if val == nil {
				delete(r.Claims, cl.name)
				continue
			}
			r.Claims[cl.name] = val
		}
	}
	return r, nil
}

// maps reports whether m changes tokens (rather than only has login rules).
func (m *Mapping) maps() bool { return m != nil && (m.groups != nil || len(m.claims) > 0) }

func (m *Mapping) mapGroups(vars *activation) ([]string, error) {
	v, _, err := m.groups.Eval(vars)
	if err != nil {
		return nil, fmt.Errorf("claimMapping.groups: %w", err)
	}
	g, err := stringList(v)
	if err != nil {
		return nil, fmt.Errorf("claimMapping.groups: %w", err)
	}
	return g, nil
}

// Denial says why a person may not sign in: which object's login rule
// refused them, and with what message.
type Denial struct {
	// Of is the kind of object whose rule decided: AuthorizationServer
	// or OAuthClient.
	Of string
	// Rule is the field, e.g. spec.claimMapping.loginRules[1].
	Rule string
	// Message is the rule's message for the person ("" for none).
	Message string
	// Err is set when the rule could not be evaluated for the person
	// (a missing value, a wrong type, a person beyond the checked
	// sizes) rather than gave false: the login is refused all the same.
	Err error
}

// Reason is the denial for logs: which rule, and whether it gave false
// or failed. It never carries the person's attributes.
func (d *Denial) Reason() string {
	if d.Err != nil {
		return fmt.Sprintf("%s %s failed, which refuses the login: %v", d.Of, d.Rule, d.Err)
	}
	return fmt.Sprintf("%s %s gave false", d.Of, d.Rule)
}

// Admit checks the server's login rules on u and c, then the client's on
// u as the server's groups mapping gives them (the same variables as the
// claims of each): nil when every rule gives true. A rule that cannot be
// evaluated refuses, as does any error on the way: login rules fail
// closed.
func Admit(server, client *Mapping, u User, c Client) *Denial {
	if !server.HasLoginRules() && !client.HasLoginRules() {
		return nil
	}
	if err := withinSizes(u, c); err != nil {
		return &Denial{Of: "AuthorizationServer", Rule: "spec.claimMapping.loginRules", Err: err}
	}
	vars := newActivation(&u, &c)
	if d := server.admit(vars, "AuthorizationServer"); d != nil {
		return d
	}
	if !client.HasLoginRules() {
		return nil
	}
	if server != nil && server.groups != nil {
		g, err := server.mapGroups(vars)
		if err != nil {
			return &Denial{Of: "AuthorizationServer", Rule: "spec.claimMapping.groups", Err: err}
		}
		u.Groups = g
		vars = newActivation(&u, &c)
	}
	return client.admit(vars, "OAuthClient")
}

// HasLoginRules reports whether m (which may be nil) has login rules.
func (m *Mapping) HasLoginRules() bool { return m != nil && len(m.rules) > 0 }

// admit evaluates m's rules in order; the first that does not give true
// decides.
func (m *Mapping) admit(vars *activation, of string) *Denial {
	if m == nil {
		return nil
	}
	for _, r := range m.rules {
		v, _, err := r.prg.Eval(vars)
		if err != nil {
			return &Denial{Of: of, Rule: r.field, Message: r.message, Err: err}
		}
		b, ok := v.(types.Bool)
		if !ok {
			return &Denial{Of: of, Rule: r.field, Message: r.message, Err: fmt.Errorf("gave %s, not a bool", v.Type().TypeName())}
		}
		if !b {
			return &Denial{Of: of, Rule: r.field, Message: r.message}
		}
	}
	return nil
}

// withinSizes checks that u and c are within the sizes the cost budget was
// checked for.
func withinSizes(u User, c Client) error {
	if len(u.Groups) > MaxGroups {
		return fmt.Errorf("the person has %d groups, more than the %d a claim mapping is checked for", len(u.Groups), MaxGroups)
	}
	for _, s := range append([]string{u.Subject, u.Username, u.Name, u.Email, c.ID, c.Namespace}, u.Groups...) {
		if len(s) > MaxStringLength {
			return fmt.Errorf("a value of the person or client is %d bytes long, more than the %d a claim mapping is checked for", len(s), MaxStringLength)
		}
	}
	return nil
}

// activation resolves the variables without a map per evaluation.
type activation struct {
	u      *User
	c      *Client
	groups ref.Val
}

func newActivation(u *User, c *Client) *activation {
	return &activation{u: u, c: c, groups: types.NewStringList(types.DefaultTypeAdapter, u.Groups)}
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "user.subject":
		return a.u.Subject, true
	case "user.username":
		return a.u.Username, true
	case "user.name":
		return a.u.Name, true
	case "user.email":
		return a.u.Email, true
	case "user.emailVerified":
		return a.u.EmailVerified, true
	case "user.groups":
		return a.groups, true
	case "client.id":
		return a.c.ID, true
	case "client.namespace":
		return a.c.Namespace, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

func stringList(v ref.Val) ([]string, error) {
	native, err := v.ConvertToNative(reflect.TypeFor[[]string]())
	if err != nil {
		return nil, fmt.Errorf("gave %s, not a list of strings", v.Type().TypeName())
	}
	return native.([]string), nil
}

// claimValue is v as a claim, nil for one to leave out.
func claimValue(v ref.Val) (any, error) {
	switch v := v.(type) {
	case types.String:
		if v == "" {
			return nil, nil
		}
		return string(v), nil
	case types.Bool:
		return bool(v), nil
	case types.Int:
		return int64(v), nil
	case types.Null:
		return nil, nil
	}
	l, err := stringList(v)
	if err != nil {
		return nil, fmt.Errorf("gave %s, not a string, bool, int or list of strings", v.Type().TypeName())
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}
