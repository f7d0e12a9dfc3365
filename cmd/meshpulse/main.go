// Command meshpulse is the developer's and operator's tool: the embedded
// dev stack, publishing from the shell, migrations, the ingestor, benchmarks.
package main

import (
	"fmt"
	"os"
)

const usage = `meshpulse — the metadata backbone of a data mesh

usage: meshpulse <command> [flags]

commands:
  dev       run everything in one process: embedded Kafka, a private ClickHouse, the ingestor (-demo: simulated domains)
  emit      publish NDJSON events of one family from stdin
  watch     print score changes from mesh.scores (-from-beginning, -domain, -product, -json)
  migrate   apply the ClickHouse migrations and create the Kafka topics
  ingest    run the ingestor (the same as the ingestor binary)
  score     run the scorer (the same as the scorer binary)
  openlineage  serve POST /api/v1/lineage for OpenLineage clients (the same as the openlineage binary)
  catalog   serve the web catalog and its JSON API (the same as the catalog binary)
  schemas   list the embedded Avro schema versions with their fingerprints
  bench     benchmark commands (bench ingest)
  probe     GET a URL and exit 0 on 200 (container health checks without curl)

Every flag also reads an environment variable: -kafka-sasl-user is MESHPULSE_KAFKA_SASL_USER.
Run 'meshpulse <command> -h' for its flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmds := map[string]func([]string) int{
		"dev":         runDev,
		"emit":        runEmit,
		"watch":       runWatch,
		"migrate":     runMigrate,
		"ingest":      runIngest,
		"score":       runScore,
		"openlineage": runOpenLineage,
		"catalog":     runCatalog,
		"bench":       runBench,
		"probe":       runProbe,
		"schemas":     runSchemas,
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		if os.Args[1] != "help" && os.Args[1] != "-h" && os.Args[1] != "--help" {
			fmt.Fprintf(os.Stderr, "meshpulse: unknown command %q\n\n", os.Args[1])
		}
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	os.Exit(cmd(os.Args[2:]))
}

func fail(cmd string, err error) int {
	fmt.Fprintf(os.Stderr, "meshpulse %s: %v\n", cmd, err)
	return 1
}
