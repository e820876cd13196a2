// Package servercontract is the contract between the operator and the
// token server it runs: the `gatehouse server` command line, the
// environment, the ports and the paths. The operator builds the server's
// container from it (controllers/authorizationserver_runtime.go), the
// command defines and reads the same names (cmd/gatehouse/server.go), and
// `gatehouse dev` starts its server with it, so that neither side can
// rename a flag or move a port without the other.
package servercontract

import (
	"fmt"
	"strings"
)

// Command is the subcommand of the gatehouse binary that runs a token
// server.
const Command = "server"

// Flags of `gatehouse server`.
const (
	// FlagAuthorizationServer names the AuthorizationServer to serve, as
	// NAMESPACE/NAME.
	FlagAuthorizationServer = "authorization-server"
	// FlagListen is the address of the public OAuth endpoints.
	FlagListen = "listen"
	// FlagMetricsListen is the address of HealthzPath, ReadyzPath and
	// MetricsPath, apart from the public port.
	FlagMetricsListen = "metrics-listen"
	// FlagPostgresURL is the PostgreSQL URL; the operator passes it in
	// EnvPostgresURL instead, so that it is never on a command line.
	FlagPostgresURL     = "postgres-url"
	FlagTrustedProxies  = "trusted-proxies"
	FlagForwardedHeader = "forwarded-header"
	FlagTLSCertFile     = "tls-cert-file"
	FlagTLSKeyFile      = "tls-key-file"
	FlagLogLevel        = "log-level"
	FlagGCInterval      = "gc-interval"
	// The bounds on waiting for PostgreSQL: opening a connection, getting
	// one from the pool, one statement.
	FlagPostgresConnectTimeout   = "postgres-connect-timeout"
	FlagPostgresAcquireTimeout   = "postgres-acquire-timeout"
	FlagPostgresStatementTimeout = "postgres-statement-timeout"
	// FlagMaxConcurrentRequests and FlagMaxConcurrentLogins bound the
	// requests and the password logins served at once; the excess gets
	// 503 with Retry-After.
	FlagMaxConcurrentRequests = "max-concurrent-requests"
	FlagMaxConcurrentLogins   = "max-concurrent-logins"
	// FlagRefreshTokenRetry lets a client retry a refresh whose answer it
	// never got (server.Options.RefreshRetry).
	FlagRefreshTokenRetry = "refresh-token-retry"
	// FlagAuditLog is where the audit log goes: stdout, stderr, off or a
	// file path.
	FlagAuditLog = "audit-log"
)

// EnvPostgresURL carries the PostgreSQL connection URL into the server,
// from the Secret spec.storage.postgres.urlSecretRef names.
const EnvPostgresURL = "GATEHOUSE_POSTGRES_URL"

// Ports of the server in its container: the public endpoints, and health
// and metrics.
const (
	HTTPPort    = 8080
	MetricsPort = 9090
)

// Paths on the metrics port.
const (
	// HealthzPath answers while the process runs (liveness).
	HealthzPath = "/healthz"
	// ReadyzPath answers once the configuration is synced, a key signs
	// and storage answers (readiness).
	ReadyzPath = "/readyz"
	// MetricsPath serves Prometheus metrics.
	MetricsPath = "/metrics"
)

// TLSDir is where the operator mounts spec.tls's Secret; the files are
// the Secret's tls.crt and tls.key.
const TLSDir = "/etc/gatehouse/tls"

// Args are the settings one token server runs with. Empty fields are left
// off the command line, and the server's defaults apply.
type Args struct {
	AuthorizationServer string // NAMESPACE/NAME
	Listen              string
	MetricsListen       string
	PostgresURL         string
	// TrustedProxies is a comma-separated list of CIDR prefixes;
	// ForwardedHeader is given only with it.
	TrustedProxies  string
	ForwardedHeader string
	TLSCertFile     string
	TLSKeyFile      string
	LogLevel        string
	GCInterval      string
	// PostgreSQL timeouts, as durations ("5s").
	PostgresConnectTimeout   string
	PostgresAcquireTimeout   string
	PostgresStatementTimeout string
	AuditLog                 string
}

// ListenAddress is the listen address of port on every interface.
func ListenAddress(port int) string { return fmt.Sprintf(":%d", port) }

// CommandLine is Command and the flags of a, always in the same order: a
// Deployment's pod template holds it, and any change to it rolls the
// server out again.
func (a Args) CommandLine() []string {
	out := []string{Command}
	add := func(flag, value string) {
		if value != "" {
			out = append(out, "--"+flag, value)
		}
	}
	add(FlagAuthorizationServer, a.AuthorizationServer)
	add(FlagListen, a.Listen)
	add(FlagMetricsListen, a.MetricsListen)
	add(FlagPostgresURL, a.PostgresURL)
	if a.TrustedProxies != "" {
		add(FlagTrustedProxies, a.TrustedProxies)
		add(FlagForwardedHeader, a.ForwardedHeader)
	}
	add(FlagTLSCertFile, a.TLSCertFile)
	add(FlagTLSKeyFile, a.TLSKeyFile)
	add(FlagLogLevel, a.LogLevel)
	add(FlagGCInterval, a.GCInterval)
	add(FlagPostgresConnectTimeout, a.PostgresConnectTimeout)
	add(FlagPostgresAcquireTimeout, a.PostgresAcquireTimeout)
	add(FlagPostgresStatementTimeout, a.PostgresStatementTimeout)
	add(FlagAuditLog, a.AuditLog)
	return out
}

// String is the command line for a log line; it never shows the
// PostgreSQL URL, which may carry a password.
func (a Args) String() string {
	if a.PostgresURL != "" {
		a.PostgresURL = "<redacted>"
	}
	return strings.Join(a.CommandLine(), " ")
}
