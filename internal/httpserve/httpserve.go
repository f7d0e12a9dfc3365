// Package httpserve serves the operational endpoints of a meshpulse
// process: /metrics (Prometheus), /healthz (making progress: a liveness
// probe restarts a replica that says no), /readyz (ready to work) and the
// Go profiler under /debug/pprof/ (the address is an operator's, not a
// user's: keep it off public networks).
package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// Probes are what a component reports to /healthz and /readyz.
type Probes struct {
	// Healthy returns nil while the component makes progress, or why not.
	Healthy func() error
	// Ready reports whether it has started working.
	Ready func() bool
}

// Serve listens on addr until ctx ends.
func Serve(ctx context.Context, addr string, reg *prometheus.Registry, p Probes, log zerolog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if p.Healthy != nil {
			if err := p.Healthy(); err != nil {
				http.Error(w, "unhealthy: "+err.Error()+"\n", http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !p.Ready() {
			http.Error(w, "not ready\n", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info().Str("addr", l.Addr().String()).Msg("serving /metrics /healthz /readyz")
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
