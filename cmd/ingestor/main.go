// Command ingestor consumes the inbound mesh topics into ClickHouse.
// Run several replicas with the same -group to share the partitions.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/meshpulse/meshpulse/internal/app"
	"github.com/meshpulse/meshpulse/internal/cli"
)

func main() {
	var cfg app.IngestorConfig
	fs := flag.NewFlagSet("ingestor", flag.ExitOnError)
	cfg.RegisterFlags(fs)
	checkConfig := fs.Bool("check-config", false, "validate the configuration and exit")
	if err := cli.Parse(fs, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ingestor:", err)
		os.Exit(2)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "ingestor: invalid configuration:\n%v\n", err)
		os.Exit(2)
	}
	if *checkConfig {
		fmt.Println("configuration ok")
		return
	}
	log, err := cli.Logger(cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingestor:", err)
		os.Exit(2)
	}
	ctx, stop := cli.SignalContext()
	defer stop()
	if err := app.RunIngestor(ctx, cfg, log, app.NewRegistry(), nil); err != nil {
		log.Error().Err(err).Msg("ingestor stopped")
		os.Exit(1)
	}
}
