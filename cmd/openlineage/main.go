// Command openlineage serves POST /api/v1/lineage, where OpenLineage
// clients (Airflow, dbt-ol, Spark, the Python and Java clients) send their
// events: each is authenticated by its API key, validated and published to
// mesh.<domain>.openlineage, then the ingestor stores it.
package main

import (
	"os"

	"github.com/meshpulse/meshpulse/internal/app"
)

func main() { os.Exit(app.Main("openlineage", os.Args[1:], &app.OpenLineageConfig{})) }
