package app

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/meshpulse/meshpulse/internal/cli"
)

// Service is a long-running meshpulse process: its flags, their validation
// and how to run it.
type Service interface {
	RegisterFlags(fs *flag.FlagSet)
	Validate() error
	LogLevelFlag() string
	Run(ctx context.Context, log zerolog.Logger, reg *prometheus.Registry) error
}

// Main is the whole of a service's main: parse flags (with MESHPULSE_*
// fallbacks), validate and report every problem, -check-config, logger,
// signal handling, run. It returns the exit code.
func Main(name string, args []string, svc Service) int {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	svc.RegisterFlags(fs)
	checkConfig := fs.Bool("check-config", false, "validate the configuration and exit")
	if err := cli.Parse(fs, args); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	if err := svc.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: invalid configuration:\n%v\n", name, err)
		return 2
	}
	if *checkConfig {
		fmt.Println("configuration ok")
		return 0
	}
	log, err := cli.Logger(svc.LogLevelFlag())
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	ctx, stop := cli.SignalContext()
	defer stop()
	if err := svc.Run(ctx, log, NewRegistry()); err != nil {
		log.Error().Err(err).Msgf("%s stopped", name)
		return 1
	}
	return 0
}

// LogLevelFlag implements Service.
func (c *IngestorConfig) LogLevelFlag() string { return c.LogLevel }

// Run implements Service.
func (c *IngestorConfig) Run(ctx context.Context, log zerolog.Logger, reg *prometheus.Registry) error {
	setMemoryLimit(c.MemoryLimitMiB, log)
	return RunIngestor(ctx, *c, log, reg, nil)
}

// setMemoryLimit gives the Go runtime a soft memory limit, unless the
// environment's GOMEMLIMIT already set one. The ingestor's live heap is its
// batch in flight and the one filling (about 110 MiB at the defaults); Go's
// default pacing lets the heap grow to twice the live heap between
// collections, and the limit collects sooner instead, so the process stays
// within a container's budget. It is soft: a live heap above it still runs,
// with more collection.
func setMemoryLimit(mib int, log zerolog.Logger) {
	if mib <= 0 || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(int64(mib) << 20)
	log.Debug().Int("mib", mib).Msg("soft memory limit set")
}

// LogLevelFlag implements Service.
func (c *ScorerConfig) LogLevelFlag() string { return c.LogLevel }

// Run implements Service.
func (c *ScorerConfig) Run(ctx context.Context, log zerolog.Logger, reg *prometheus.Registry) error {
	return RunScorer(ctx, *c, log, reg, nil)
}
