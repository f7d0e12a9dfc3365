package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/app"
	"github.com/meshpulse/meshpulse/internal/bench"
	"github.com/meshpulse/meshpulse/internal/cli"
	"github.com/meshpulse/meshpulse/internal/devstack"
	"github.com/meshpulse/meshpulse/internal/emit"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/watch"
	"github.com/meshpulse/meshpulse/pkg/events"
)

func runDev(args []string) int {
	var cfg devstack.Config
	fs := flag.NewFlagSet("dev", flag.ExitOnError)
	cfg.RegisterFlags(fs)
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error (env MESHPULSE_LOG_LEVEL)")
	if err := cli.Parse(fs, args); err != nil {
		return fail("dev", err)
	}
	log, err := cli.Logger(*logLevel)
	if err != nil {
		return fail("dev", err)
	}
	ctx, stop := cli.SignalContext()
	defer stop()
	if err := devstack.Run(ctx, cfg, os.Stdout, log); err != nil {
		return fail("dev", err)
	}
	return 0
}

func runEmit(args []string) int {
	var kc kafka.Config
	fs := flag.NewFlagSet("emit", flag.ExitOnError)
	kc.RegisterFlags(fs)
	family := fs.String("family", "", "metadata, lineage, usage or quality (env MESHPULSE_FAMILY)")
	emitter := fs.String("emitter", "", "your domain, or platform for shared tooling (env MESHPULSE_EMITTER)")
	strict := fs.Bool("strict", false, "stop at the first bad line (env MESHPULSE_STRICT)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: meshpulse emit -kafka HOST:PORT -emitter DOMAIN -family FAMILY < events.ndjson\n\nOne JSON event per line, with the Avro schema's field names; event_id, event_time and emitter may be left out.")
		fs.PrintDefaults()
	}
	if err := cli.Parse(fs, args); err != nil {
		return fail("emit", err)
	}
	fam, ferr := events.ParseFamily(*family)
	if err := errors.Join(kc.Validate(), ferr); err != nil {
		return fail("emit", err)
	}
	if fam == events.FamilyScores {
		return fail("emit", errors.New("scores are published by the scorer only"))
	}
	cl, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		return fail("emit", err)
	}
	defer cl.Close()
	codecs, err := events.NewCodecs()
	if err != nil {
		return fail("emit", err)
	}
	p, err := events.NewProducer(cl, codecs, *emitter)
	if err != nil {
		return fail("emit", err)
	}
	ctx, stop := cli.SignalContext()
	defer stop()
	res, err := emit.Run(ctx, os.Stdin, os.Stderr, p, fam, *strict)
	fmt.Fprintf(os.Stderr, "published %d, rejected %d\n", res.Published, res.Rejected)
	if err != nil {
		return fail("emit", err)
	}
	if res.Rejected > 0 {
		return 1
	}
	return 0
}

func runMigrate(args []string) int {
	var (
		kc kafka.Config
		sc store.Config
	)
	fs := flag.NewFlagSet("migrate", flag.ExitOnError)
	kc.RegisterFlags(fs)
	sc.RegisterFlags(fs)
	fs.StringVar(&sc.Cluster, "cluster", "", "the same as -clickhouse-cluster")
	domains := fs.String("domains", "", "domains whose inbound topics to create, comma-separated (env MESHPULSE_DOMAINS)")
	if err := cli.Parse(fs, args); err != nil {
		return fail("migrate", err)
	}
	if err := sc.Validate(); err != nil {
		return fail("migrate", err)
	}
	limit := 2 * time.Minute
	if sc.Cluster != "" {
		limit = 15 * time.Minute // each statement waits for every server of the cluster
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	conn, err := store.Open(ctx, sc)
	if err != nil {
		return fail("migrate", err)
	}
	defer conn.Close()
	applied, err := store.MigrateFor(ctx, conn, sc)
	if err != nil {
		return fail("migrate", err)
	}
	fmt.Printf("clickhouse %s: database %s, applied migrations %v\n", sc.Addr, sc.Database, applied)
	if kc.Brokers != "" {
		if err := kc.Validate(); err != nil {
			return fail("migrate", err)
		}
		if err := app.CreateTopics(ctx, kc, cli.SplitList(*domains)); err != nil {
			return fail("migrate", err)
		}
		fmt.Printf("kafka %s: topics created for platform and %q\n", kc.Brokers, *domains)
	}
	return 0
}

func runIngest(args []string) int { return app.Main("meshpulse ingest", args, &app.IngestorConfig{}) }

func runBench(args []string) int {
	if len(args) > 0 && args[0] == "scorer" {
		return runBenchScorer(args[1:])
	}
	if len(args) > 0 && args[0] == "latency" {
		return runBenchLatency(args[1:])
	}
	if len(args) > 0 && args[0] == "openlineage" {
		return runBenchOpenLineage(args[1:])
	}
	if len(args) > 0 && args[0] == "catalog" {
		return runBenchCatalog(args[1:])
	}
	if len(args) == 0 || args[0] != "ingest" {
		fmt.Fprintln(os.Stderr, "usage: meshpulse bench ingest [-events N] [-partitions P] [-replicas R] [-clickhouse HOST:PORT] [-- ingestor flags]\n       meshpulse bench scorer [-products N] [-days D] [-clickhouse HOST:PORT]\n       meshpulse bench latency [-queryable-rate N] [-score-rate N] [-duration D]\n       meshpulse bench openlineage [-pairs N] [-clients C] [-rate R] [-duration D]\n       meshpulse bench catalog [-products N] [-fields F] [-requests R]")
		return 2
	}
	var c bench.IngestConfig
	fs := flag.NewFlagSet("bench ingest", flag.ExitOnError)
	fs.IntVar(&c.Events, "events", 1_000_000, "usage events to push through")
	fs.IntVar(&c.Partitions, "partitions", 6, "partitions of the usage topic")
	fs.IntVar(&c.Replicas, "replicas", 1, "ingestor processes in the consumer group")
	fs.StringVar(&c.ClickHouse, "clickhouse", "", "ClickHouse native address; empty starts a private server")
	if err := fs.Parse(args[1:]); err != nil {
		return fail("bench", err)
	}
	c.ChildArgs = fs.Args()
	self, err := os.Executable()
	if err != nil {
		return fail("bench", err)
	}
	c.Self = self
	ctx, stop := cli.SignalContext()
	defer stop()
	if err := bench.Ingest(ctx, c, os.Stdout); err != nil {
		return fail("bench", err)
	}
	return 0
}

func runProbe(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: meshpulse probe URL")
		return 2
	}
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(args[0])
	if err != nil {
		return fail("probe", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail("probe", fmt.Errorf("%s: %s", args[0], resp.Status))
	}
	return 0
}

func runWatch(args []string) int {
	var (
		kc kafka.Config
		c  watch.Config
	)
	fs := flag.NewFlagSet("watch", flag.ExitOnError)
	kc.RegisterFlags(fs)
	fs.BoolVar(&c.FromBeginning, "from-beginning", false, "print every change on the topic, not only new ones")
	fs.StringVar(&c.Domain, "domain", "", "only products of this domain")
	fs.StringVar(&c.Product, "product", "", "only this product URN")
	fs.BoolVar(&c.JSON, "json", false, "one JSON object per line")
	fs.IntVar(&c.Limit, "limit", 0, "stop after this many changes; 0 follows forever")
	if err := cli.Parse(fs, args); err != nil {
		return fail("watch", err)
	}
	if kc.Brokers == "" {
		kc.Brokers = "127.0.0.1:9092" // the dev stack's embedded Kafka
	}
	if err := kc.Validate(); err != nil {
		return fail("watch", err)
	}
	codecs, err := events.NewCodecs()
	if err != nil {
		return fail("watch", err)
	}
	ctx, stop := cli.SignalContext()
	defer stop()
	if err := watch.Run(ctx, c, kc.Opts(), codecs, os.Stdout); err != nil {
		return fail("watch", err)
	}
	return 0
}

func runScore(args []string) int   { return app.Main("meshpulse score", args, &app.ScorerConfig{}) }
func runCatalog(args []string) int { return app.Main("meshpulse catalog", args, &app.CatalogConfig{}) }
func runOpenLineage(args []string) int {
	return app.Main("meshpulse openlineage", args, &app.OpenLineageConfig{})
}
func runBenchScorer(args []string) int {
	c := bench.ScorerConfig{Changes: []int{10, 100, 1000}}
	fs := flag.NewFlagSet("bench scorer", flag.ExitOnError)
	fs.IntVar(&c.Products, "products", 10_000, "products in the generated mesh")
	fs.IntVar(&c.Days, "days", 30, "days of usage, quality and runs")
	fs.StringVar(&c.ClickHouse, "clickhouse", "", "ClickHouse native address; empty starts a private server")
	fs.BoolVar(&c.Keep, "keep", false, "keep the generated database (with -clickhouse)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the incremental passes to this file")
	fs.StringVar(&c.FullProfile, "fullprofile", "", "write a CPU profile of the second full pass to this file")
	fs.StringVar(&c.MemProfile, "memprofile", "", "write a heap profile after the first full pass to this file, and one at the live heap's peak to this file with .peak added")
	fs.StringVar(&c.Database, "database", "", "reuse this database generated by an earlier run with -keep (its scores are cleared) instead of generating one")
	fs.StringVar(&c.Kafka, "kafka", "", "Kafka brokers; empty runs an in-process broker, whose memory then counts in the heap figure")
	if err := fs.Parse(args); err != nil {
		return fail("bench", err)
	}
	ctx, stop := cli.SignalContext()
	defer stop()
	if err := bench.Scorer(ctx, c, os.Stdout); err != nil {
		return fail("bench", err)
	}
	return 0
}

func runSchemas(args []string) int {
	fs := flag.NewFlagSet("schemas", flag.ExitOnError)
	canonical := fs.Bool("canonical", false, "also print each version's Parsing Canonical Form")
	if err := cli.Parse(fs, args); err != nil {
		return fail("schemas", err)
	}
	codecs, err := events.NewCodecs()
	if err != nil {
		return fail("schemas", err)
	}
	fmt.Println("family    version  fingerprint (CRC-64-AVRO)  single-object header                still accepted (pre-2026-11 producers)")
	for _, v := range codecs.Versions() {
		fmt.Printf("%-9s v%-7d %016x           C3 01 % x  %016x\n", v.Family, v.Version, v.Fingerprint, v.FingerprintBytes(), v.LegacyFingerprint)
		if *canonical {
			fmt.Printf("  %s\n", v.Canonical)
		}
	}
	return 0
}

func runBenchLatency(args []string) int {
	var c bench.LatencyConfig
	fs := flag.NewFlagSet("bench latency", flag.ExitOnError)
	fs.IntVar(&c.QueryableRate, "queryable-rate", 100_000, "events/s while measuring event → queryable")
	fs.IntVar(&c.ScoreRate, "score-rate", 10_000, "events/s of load while measuring event → ScoreChanged")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "length of each phase")
	fs.StringVar(&c.ClickHouse, "clickhouse", "", "ClickHouse native address; empty starts a private server")
	if err := fs.Parse(args); err != nil {
		return fail("bench", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fail("bench", err)
	}
	c.Self = self
	ctx, stop := cli.SignalContext()
	defer stop()
	if err := bench.Latency(ctx, c, os.Stdout); err != nil {
		return fail("bench", err)
	}
	return 0
}

func runBenchOpenLineage(args []string) int {
	var c bench.OpenLineageConfig
	fs := flag.NewFlagSet("bench openlineage", flag.ExitOnError)
	fs.IntVar(&c.Pairs, "pairs", 100_000, "START+COMPLETE pairs of the throughput phase")
	fs.IntVar(&c.Clients, "clients", 64, "concurrent HTTP clients with keep-alive connections")
	fs.IntVar(&c.Rate, "rate", 10_000, "events/s of the fixed-rate phase")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "length of the fixed-rate phase")
	fs.StringVar(&c.ClickHouse, "clickhouse", "", "ClickHouse native address; empty starts a private server")
	if err := fs.Parse(args); err != nil {
		return fail("bench", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fail("bench", err)
	}
	c.Self = self
	ctx, stop := cli.SignalContext()
	defer stop()
	if err := bench.OpenLineage(ctx, c, os.Stdout); err != nil {
		return fail("bench", err)
	}
	return 0
}

func runBenchCatalog(args []string) int {
	var c bench.CatalogConfig
	fs := flag.NewFlagSet("bench catalog", flag.ExitOnError)
	fs.IntVar(&c.Products, "products", 100_000, "products in the generated mesh")
	fs.IntVar(&c.Fields, "fields", 10, "fields of each product's output dataset")
	fs.IntVar(&c.Requests, "requests", 200, "requests of each kind")
	fs.StringVar(&c.ClickHouse, "clickhouse", "", "ClickHouse native address; empty starts a private server")
	if err := fs.Parse(args); err != nil {
		return fail("bench", err)
	}
	ctx, stop := cli.SignalContext()
	defer stop()
	if err := bench.Catalog(ctx, c, os.Stdout); err != nil {
		return fail("bench", err)
	}
	return 0
}
