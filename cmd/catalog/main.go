// Command catalog serves meshpulse's read-only web catalog and its JSON
// API: the mesh, products, datasets, search and live score changes.
package main

import (
	"os"

	"github.com/meshpulse/meshpulse/internal/app"
)

func main() { os.Exit(app.Main("catalog", os.Args[1:], &app.CatalogConfig{})) }
