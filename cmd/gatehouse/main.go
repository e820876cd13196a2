// Command gatehouse is the one Gatehouse binary. Its subcommands run the
// parts: see `gatehouse help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one subcommand: `gatehouse <name> [flags]`.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{name: "server", summary: "serve the OAuth endpoints of one AuthorizationServer", run: runServer},
		{name: "version", summary: "print the version and commit", run: runVersion},
		{name: "operator", summary: "run the operator: reconcile AuthorizationServers, OAuthClients and Scopes", run: runOperator},
		{name: "dev", summary: "run everything on this machine with no cluster: control plane, operator, token server, demo data", run: runDev},
		{name: "login", summary: "log in with OpenID Connect and print the ID token for kubectl (an exec credential plugin)", run: runLogin},
	}
}

// errUsage marks an error whose message is a usage problem: it is printed
// with a hint and exits 2, as flag parsing errors do.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "gatehouse %s: %v\nRun 'gatehouse %s -h' for usage.\n", c.name, err, c.name)
			return 2
		default:
			fmt.Fprintf(stderr, "gatehouse %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// parseFlags parses a subcommand's flags. -h gives flag.ErrHelp (the
// usage is printed, nothing runs); a bad flag or any positional argument
// is a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Gatehouse: an OAuth 2.0 authorization server run by a Kubernetes operator.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: gatehouse <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
}
