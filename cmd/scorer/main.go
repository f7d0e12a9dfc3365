// Command scorer continuously scores data products for health and trust and
// publishes score changes on mesh.scores. Run several replicas with the same
// -group to split the products between them.
package main

import (
	"os"

	"github.com/meshpulse/meshpulse/internal/app"
)

func main() { os.Exit(app.Main("scorer", os.Args[1:], &app.ScorerConfig{})) }
