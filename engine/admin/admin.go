// Package admin is a node's HTTP side: liveness and readiness for
// orchestrators, Prometheus metrics, and the routes other parts add (the
// pipeline API).
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config configures the HTTP server.
type Config struct {
	// Gatherer is what /metrics exposes.
	Gatherer prometheus.Gatherer
	// Ready reports whether the node serves clients: nil when it does, or
	// why not. /readyz answers 503 with the reason otherwise.
	Ready func() error
	// Routes adds more handlers, e.g. the pipeline API. Optional.
	Routes func(*http.ServeMux)
	// Logger receives server errors. Default slog.Default().
	Logger *slog.Logger
}

// Server serves /healthz, /readyz, /metrics and the added routes.
type Server struct {
	srv *http.Server
}

// New returns the server; call Serve with a listener.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := cfg.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}))
	if cfg.Routes != nil {
		cfg.Routes(mux)
	}
	return &Server{srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}}
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server, waiting for requests in progress until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }
