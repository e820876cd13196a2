// Command orders-api is a small resource server protected by Gatehouse
// access tokens, to show the resourceserver package at work and to give
// the end-to-end tests an API to call.
//
//	orders-api --issuer https://auth.example.com --audience https://orders.example.com
//
// Routes (JSON in, JSON out):
//
//	GET  /healthz  no token needed
//	GET  /me       any valid token: the token's claims
//	GET  /orders   scope orders:read
//	POST /orders   scope orders:write; body {"item": "...", "quantity": n}
//
// Refusals are RFC 6750 errors (WWW-Authenticate plus a JSON body). Logs
// are JSON lines on stdout; the first says where it listens.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse-dev/gatehouse/resourceserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, nil)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "orders-api:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "orders-api:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// run serves until ctx is done. ready, if set, is called with the listen
// address once the server accepts connections.
func run(ctx context.Context, args []string, stdout io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("orders-api", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	issuer := fs.String("issuer", "", "the Gatehouse issuer URL, exactly as in tokens (required)")
	audience := fs.String("audience", "https://orders.example.com", "this API's audience: tokens must carry it in aud (the Scopes' spec.audience)")
	listen := fs.String("listen", "127.0.0.1:8090", "address to listen on (port 0 picks a free one)")
	jwksFile := fs.String("jwks-file", "", "read the JWKS from this file (the mounted JWKS ConfigMap) instead of fetching it from the issuer")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if *issuer == "" {
		return fmt.Errorf("%w: --issuer is required", errUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}

	log := slog.New(slog.NewJSONHandler(stdout, nil))
	cfg := resourceserver.Config{
		Issuer:   *issuer,
		Audience: *audience,
		OnReject: func(r *http.Request, e *resourceserver.Error) {
			attrs := []any{"method", r.Method, "path", r.URL.Path, "status", e.Status, "error", e.Code, "description", e.Description}
			if e.Err != nil {
				attrs = append(attrs, "cause", e.Err.Error())
			}
			log.Info("request refused", attrs...)
		},
	}
	if *jwksFile != "" {
		cfg.Keys = resourceserver.JWKSFile(*jwksFile)
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	v, err := resourceserver.New(startCtx, cfg)
	cancel()
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newAPI(log).routes(v), ReadHeaderTimeout: 10 * time.Second}
	log.Info("listening", "addr", ln.Addr().String(), "issuer", *issuer, "audience", *audience)
	if ready != nil {
		ready(ln.Addr().String())
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// order is one order; the store is in memory, as befits an example.
type order struct {
	ID        string    `json:"id"`
	Item      string    `json:"item"`
	Quantity  int       `json:"quantity"`
	CreatedBy string    `json:"created_by"`
	ClientID  string    `json:"client_id"`
	CreatedAt time.Time `json:"created_at"`
}

type api struct {
	log    *slog.Logger
	mu     sync.Mutex
	orders []order
}

func newAPI(log *slog.Logger) *api { return &api{log: log} }

func (a *api) routes(v *resourceserver.Validator) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /me", v.Require()(http.HandlerFunc(a.me)))
	mux.Handle("GET /orders", v.Require("orders:read")(http.HandlerFunc(a.list)))
	mux.Handle("POST /orders", v.Require("orders:write")(http.HandlerFunc(a.create)))
	return mux
}

func (a *api) me(w http.ResponseWriter, r *http.Request) {
	c, _ := resourceserver.ClaimsFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{
		"sub":       c.Subject,
		"client_id": c.ClientID,
		"scope":     strings.Join(c.Scopes, " "),
		"aud":       c.Audience,
		"jti":       c.ID,
		"iat":       c.IssuedAt.Unix(),
		"exp":       c.ExpiresAt.Unix(),
	})
}

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	orders := append([]order{}, a.orders...)
	a.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"orders": orders})
}

func (a *api) create(w http.ResponseWriter, r *http.Request) {
	c, _ := resourceserver.ClaimsFrom(r.Context())
	var in struct {
		Item     string `json:"item"`
		Quantity int    `json:"quantity"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_order", "error_description": "the body must be a JSON object {\"item\": string, \"quantity\": number}"})
		return
	}
	in.Item = strings.TrimSpace(in.Item)
	if in.Item == "" || len(in.Item) > 200 || in.Quantity < 1 || in.Quantity > 1000 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_order", "error_description": "item must be 1 to 200 characters and quantity 1 to 1000"})
		return
	}
	a.mu.Lock()
	o := order{
		ID:        strconv.Itoa(len(a.orders) + 1),
		Item:      in.Item,
		Quantity:  in.Quantity,
		CreatedBy: c.Subject,
		ClientID:  c.ClientID,
		CreatedAt: time.Now().UTC(),
	}
	a.orders = append(a.orders, o)
	a.mu.Unlock()
	a.log.Info("order created", "id", o.ID, "sub", c.Subject, "client_id", c.ClientID)
	w.Header().Set("Location", "/orders/"+o.ID)
	writeJSON(w, http.StatusCreated, o)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
