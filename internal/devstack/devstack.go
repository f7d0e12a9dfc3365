// Package devstack is meshpulse dev: the whole system in one process for a
// laptop — an in-process Kafka (kfake, persisted in a data directory), a
// private clickhouse-server child process, migrations, the ingestor, and
// with Demo the simulated mesh. External Kafka or ClickHouse addresses
// replace the embedded parts.
package devstack

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/meshpulse/meshpulse/internal/app"
	"github.com/meshpulse/meshpulse/internal/catalog"
	"github.com/meshpulse/meshpulse/internal/chserver"
	"github.com/meshpulse/meshpulse/internal/cli"
	"github.com/meshpulse/meshpulse/internal/demo"
	"github.com/meshpulse/meshpulse/internal/ingest"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/openlineage"
	"github.com/meshpulse/meshpulse/internal/scorer"
	"github.com/meshpulse/meshpulse/internal/scorer/model"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/watch"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// Config of the dev stack.
type Config struct {
	Dir            string        // data directory of the embedded Kafka and ClickHouse
	Kafka          string        // external brokers; empty runs kfake
	KafkaPort      int           // port of the embedded Kafka
	ClickHouse     string        // external native address; empty runs a private server
	ClickHousePort int           // native port of the private server
	Database       string        // ClickHouse database
	Demo           bool          // run the simulated mesh
	Domains        string        // domains whose inbound topics are created (comma-separated)
	Duration       time.Duration // stop after this long; 0 runs until interrupted
	Report         time.Duration // how often to print what was ingested
	HTTPAddr       string
	PolicyFile     string // scorer policy; empty: defaults (with -demo: short windows)
	OpenLineage    string // address of POST /api/v1/lineage; empty disables it
	Catalog        string // address of the web catalog; empty disables it
	Namespaces     string // OpenLineage job namespace rules
}

// RegisterFlags adds the dev flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Dir, "dir", ".meshpulse", "data directory of the embedded Kafka and ClickHouse (env MESHPULSE_DIR)")
	fs.StringVar(&c.Kafka, "kafka", "", "use these Kafka brokers instead of the embedded one (env MESHPULSE_KAFKA)")
	fs.IntVar(&c.KafkaPort, "kafka-port", 9092, "port of the embedded Kafka on 127.0.0.1 (env MESHPULSE_KAFKA_PORT)")
	fs.StringVar(&c.ClickHouse, "clickhouse", "", "use this ClickHouse (host:port, native) instead of a private server (env MESHPULSE_CLICKHOUSE)")
	fs.IntVar(&c.ClickHousePort, "clickhouse-port", 19000, "native port of the private ClickHouse on 127.0.0.1 (env MESHPULSE_CLICKHOUSE_PORT)")
	fs.StringVar(&c.Database, "clickhouse-database", "meshpulse", "ClickHouse database (env MESHPULSE_CLICKHOUSE_DATABASE)")
	fs.BoolVar(&c.Demo, "demo", false, "play simulated domains: products, lineage, usage, quality with failures (env MESHPULSE_DEMO)")
	fs.StringVar(&c.Domains, "domains", strings.Join(demo.Domains, ","), "domains whose topics mesh.<domain>.* are created, comma-separated (env MESHPULSE_DOMAINS)")
	fs.DurationVar(&c.Duration, "duration", 0, "stop after this long; 0 runs until Ctrl-C (env MESHPULSE_DURATION)")
	fs.DurationVar(&c.Report, "report", 5*time.Second, "how often to print what was ingested (env MESHPULSE_REPORT)")
	fs.StringVar(&c.HTTPAddr, "http", "127.0.0.1:8080", "address of the ingestor's /metrics, /healthz, /readyz (the scorer's is the next port); empty to disable (env MESHPULSE_HTTP)")
	fs.StringVar(&c.PolicyFile, "policy", "", "scorer policy file; empty uses the defaults, with -demo windows of minutes instead of days (env MESHPULSE_POLICY)")
	fs.StringVar(&c.OpenLineage, "openlineage", "127.0.0.1:5000", "address of the OpenLineage endpoint POST /api/v1/lineage, requests without a key speak as platform; empty to disable (env MESHPULSE_OPENLINEAGE)")
	fs.StringVar(&c.Catalog, "catalog", "127.0.0.1:8088", "address of the web catalog; empty to disable (env MESHPULSE_CATALOG)")
	fs.StringVar(&c.Namespaces, "openlineage-namespaces", "", "OpenLineage job namespace rules pattern=domain,… (env MESHPULSE_OPENLINEAGE_NAMESPACES)")
}

// Run starts everything and blocks until ctx ends or Duration passes.
func Run(ctx context.Context, c Config, out io.Writer, log zerolog.Logger) error {
	if c.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Duration)
		defer cancel()
	}
	brokers := c.Kafka
	if brokers == "" {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(c.KafkaPort), kfake.DataDir(filepath.Join(c.Dir, "kafka")))
		if err != nil {
			return fmt.Errorf("embedded kafka on port %d: %w (is another Kafka running? try -kafka-port)", c.KafkaPort, err)
		}
		defer cluster.Close()
		brokers = strings.Join(cluster.ListenAddrs(), ",")
	}
	chAddr := c.ClickHouse
	if chAddr == "" {
		if _, err := chserver.Binary(); err != nil {
			return err
		}
		srv, err := chserver.Start(ctx, filepath.Join(c.Dir, "clickhouse"), c.ClickHousePort, 0)
		if err != nil {
			return fmt.Errorf("private clickhouse: %w", err)
		}
		defer func() {
			if err := srv.Stop(); err != nil {
				log.Warn().Err(err).Msg("stop clickhouse")
			}
		}()
		chAddr = srv.Addr()
	}

	ic := app.IngestorConfig{
		Migrate:  true,
		Kafka:    kafka.Config{Brokers: brokers, Partitions: 3, Replication: 1},
		Store:    store.Config{Addr: chAddr, Database: c.Database, User: "default"},
		Ingest:   ingest.Defaults(),
		HTTPAddr: c.HTTPAddr,
	}
	ic.Ingest.OpenLineageNamespaces = c.Namespaces
	domains := cli.SplitList(c.Domains)
	if c.Demo {
		domains = append(domains, demo.Domains...)
	}
	slices.Sort(domains)
	ic.Domains = strings.Join(slices.Compact(domains), ",")
	if err := ic.Validate(); err != nil {
		return err
	}
	host, port, _ := strings.Cut(chAddr, ":")
	metrics := "off (-http is empty)"
	if c.HTTPAddr != "" {
		metrics = "http://" + c.HTTPAddr + "/metrics"
	}
	fmt.Fprintf(out, "meshpulse dev\n  kafka:      %s\n  clickhouse: %s (database %s)\n  query:      clickhouse-client --host %s --port %s --database %s\n  metrics:    %s\n  domains:    %s (topics mesh.<domain>.metadata|lineage|usage|quality and mesh.platform.*; more with -domains)\n",
		brokers, chAddr, c.Database, host, port, c.Database, metrics, strings.Join(cli.SplitList(ic.Domains), ", "))

	g, gctx := errgroup.WithContext(ctx)
	ingReady := make(chan *ingest.Ingestor, 1)
	g.Go(func() error {
		return app.RunIngestor(gctx, ic, log, app.NewRegistry(), func(i *ingest.Ingestor) { ingReady <- i })
	})
	var ing *ingest.Ingestor
	select {
	case ing = <-ingReady:
	case <-gctx.Done():
		return g.Wait()
	}
	if c.Demo {
		g.Go(func() error { return runDemo(gctx, brokers, log) })
		fmt.Fprintf(out, "  demo:       domains %s; a quality incident on %s from 40s to 100s\n", strings.Join(demo.Domains, ", "), demo.IncidentProduct)
	}
	scfg := app.ScorerConfig{Kafka: ic.Kafka, Store: ic.Store, Scorer: scorer.Defaults(), HTTPAddr: nextPort(c.HTTPAddr), Migrate: true}
	// The default group (meshpulse-scorer), whichever way a scorer is
	// started: a bin/scorer started beside dev shares the products with it
	// instead of alerting a second time.
	scfg.Scorer.Tick = time.Second
	scfg.Scorer.Replica = "dev"
	scfg.Scorer.PolicyFile = c.PolicyFile
	pol, err := model.LoadPolicy(c.PolicyFile)
	if err != nil {
		return err
	}
	if c.Demo && c.PolicyFile == "" {
		// The demo lives for minutes: windows of minutes let its incident
		// and recovery show up in the scores.
		pol.Windows = model.Windows{Quality: model.Duration{Duration: 2 * time.Minute},
			Runs: model.Duration{Duration: 2 * time.Minute}, Adoption: model.Duration{Duration: 10 * time.Minute}}
		scfg.Policy = &pol
	}
	g.Go(func() error { return app.RunScorer(gctx, scfg, log, app.NewRegistry(), nil) })
	if c.Catalog != "" {
		cc := app.CatalogConfig{Kafka: ic.Kafka, Store: ic.Store, Catalog: catalog.Config{Listen: c.Catalog, Refresh: 10 * time.Second, LivePoll: time.Second}}
		g.Go(func() error {
			return app.RunCatalog(gctx, cc, log, app.NewRegistry(), func(addr string) {
				fmt.Fprintf(out, "  catalog:    http://%s/\n", addr)
			})
		})
	}
	if c.OpenLineage != "" {
		oc := app.OpenLineageConfig{Kafka: ic.Kafka, Domains: ic.Domains}
		oc.Server = openlineage.ServerConfig{Listen: c.OpenLineage, Anonymous: events.PlatformEmitter,
			MaxBodyBytes: ic.Ingest.MaxRecordBytes, ProduceTimeout: 10 * time.Second, Namespaces: c.Namespaces}
		g.Go(func() error {
			return app.RunOpenLineage(gctx, oc, log, app.NewRegistry(), func(addr string) {
				fmt.Fprintf(out, "  openlineage: http://%s%s (no key needed here: events count as platform's; point a client's url at http://%s)\n", addr, openlineage.Path, addr)
			})
		})
	}
	g.Go(func() error {
		codecs, err := events.NewCodecs()
		if err != nil {
			return err
		}
		return watch.Run(gctx, watch.Config{}, ic.Kafka.Opts(), codecs, prefixed{out, "score: "})
	})
	g.Go(func() error { return report(gctx, ic.Store, c.Report, ing, out) })
	err = g.Wait()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		fmt.Fprintln(out, "meshpulse dev: stopped")
		return nil
	}
	return err
}

func runDemo(ctx context.Context, brokers string, log zerolog.Logger) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	codecs, err := events.NewCodecs()
	if err != nil {
		return err
	}
	gen, err := demo.New(demo.DefaultConfig(), cl, codecs, log)
	if err != nil {
		return err
	}
	return gen.Run(ctx)
}

// report prints what is stored, as an analyst would count it.
func report(ctx context.Context, sc store.Config, every time.Duration, ing *ingest.Ingestor, out io.Writer) error {
	conn, err := store.Open(ctx, sc)
	if err != nil {
		return err
	}
	defer conn.Close()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		line, err := Summary(ctx, conn, sc.Database)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(out, "report: %v\n", err)
			continue
		}
		_, dead := ing.Totals()
		fmt.Fprintf(out, "%s ingested: %s; dead letters %d\n", time.Now().Format("15:04:05"), line, dead)
	}
}

// Summary counts the stored rows of each table through FINAL.
func Summary(ctx context.Context, conn driver.Conn, db string) (string, error) {
	q := fmt.Sprintf(`SELECT
  (SELECT count() FROM %[1]s.products FINAL),
  (SELECT count() FROM %[1]s.datasets),
  (SELECT count() FROM %[1]s.lineage_runs FINAL),
  (SELECT count() FROM %[1]s.lineage_edges FINAL),
  (SELECT count() FROM %[1]s.usage_events FINAL),
  (SELECT count() FROM %[1]s.quality_results FINAL),
  (SELECT count() FROM %[1]s.quality_results FINAL WHERE status = 'FAIL')`, db)
	var p, d, r, e, u, qn, f uint64
	if err := conn.QueryRow(ctx, q).Scan(&p, &d, &r, &e, &u, &qn, &f); err != nil {
		return "", err
	}
	return fmt.Sprintf("products %d, datasets %d, run events %d, lineage edges %d, usage %d, quality %d (%d failed)", p, d, r, e, u, qn, f), nil
}

// nextPort returns addr with its port plus one ("" stays "").
func nextPort(addr string) string {
	host, port, ok := strings.Cut(addr, ":")
	n, err := strconv.Atoi(port)
	if !ok || err != nil {
		return ""
	}
	return host + ":" + strconv.Itoa(n+1)
}

// prefixed writes each line with a prefix.
type prefixed struct {
	w      io.Writer
	prefix string
}

func (p prefixed) Write(b []byte) (int, error) {
	_, err := fmt.Fprint(p.w, p.prefix+string(b))
	return len(b), err
}
