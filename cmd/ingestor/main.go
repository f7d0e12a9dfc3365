// Command ingestor consumes the inbound mesh topics into ClickHouse.
// Run several replicas with the same -group to share the partitions.
package main

import (
	"os"

	"github.com/meshpulse/meshpulse/internal/app"
)

func main() { os.Exit(app.Main("ingestor", os.Args[1:], &app.IngestorConfig{})) }
