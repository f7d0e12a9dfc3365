// Command scorer continuously scores data products for health and trust and
// publishes score changes on mesh.scores. Run several replicas with the same
// -group to split the products between them.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/meshpulse/meshpulse/internal/app"
	"github.com/meshpulse/meshpulse/internal/cli"
)

func main() {
	var cfg app.ScorerConfig
	fs := flag.NewFlagSet("scorer", flag.ExitOnError)
	cfg.RegisterFlags(fs)
	checkConfig := fs.Bool("check-config", false, "validate the configuration and the policy, and exit")
	if err := cli.Parse(fs, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "scorer:", err)
		os.Exit(2)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "scorer: invalid configuration:\n%v\n", err)
		os.Exit(2)
	}
	if *checkConfig {
		fmt.Println("configuration ok")
		return
	}
	log, err := cli.Logger(cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scorer:", err)
		os.Exit(2)
	}
	ctx, stop := cli.SignalContext()
	defer stop()
	if err := app.RunScorer(ctx, cfg, log, app.NewRegistry(), nil); err != nil {
		log.Error().Err(err).Msg("scorer stopped")
		os.Exit(1)
	}
}
