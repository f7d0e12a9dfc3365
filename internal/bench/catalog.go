package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/catalog"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// CatalogConfig of the catalog benchmark.
type CatalogConfig struct {
	Products   int
	Fields     int // per product's output dataset
	Requests   int // per kind of request
	ClickHouse string
}

// Catalog generates a mesh inside ClickHouse (products in 20 domains, each
// with one output dataset of Fields fields, lineage six layers deep, 7
// days of score history, current scores, a few checks, runs and reads),
// starts the catalog over it, and measures the server time (the
// Server-Timing header) of the mesh page, product pages and searches.
func Catalog(ctx context.Context, c CatalogConfig, out io.Writer) error {
	sc, conn, cleanup, err := freshDatabase(ctx, c.ClickHouse)
	if err != nil {
		return err
	}
	defer cleanup()
	fmt.Fprintf(out, "generating %d products with %d fields each in ClickHouse...\n", c.Products, c.Fields)
	start := time.Now()
	for _, stmt := range catalogData(sc.Database, c.Products, c.Fields) {
		if err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%.80s…: %w", stmt, err)
		}
	}
	fmt.Fprintf(out, "generated in %.1fs\n", time.Since(start).Seconds())

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return err
	}
	defer cluster.Close()
	kc := kafka.Config{Brokers: strings.Join(cluster.ListenAddrs(), ","), Partitions: 1, Replication: 1}
	cl, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		return err
	}
	if err := kafka.EnsureTopics(ctx, cl, 1, 1, kafka.CoreTopics()...); err != nil {
		cl.Close()
		return err
	}
	cl.Close()
	codecs, _ := events.NewCodecs()
	cat, err := catalog.New(catalog.Config{Listen: "127.0.0.1:0", Refresh: time.Hour, LivePoll: 2 * time.Second}, conn, sc.Database, kc.Opts(), codecs, zerolog.Nop())
	if err != nil {
		return err
	}
	defer cat.Close()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	addr := make(chan string, 1)
	done := make(chan error, 1)
	loadStart := time.Now()
	go func() { done <- cat.Run(runCtx, func(a string) { addr <- a }) }()
	base := "http://" + <-addr
	for !cat.Ready() {
		select {
		case err := <-done:
			return fmt.Errorf("catalog stopped: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	fmt.Fprintf(out, "catalog ready (products, scores, lineage graph, search index of %d documents) in %.1fs; process RSS %d MiB\n",
		2*c.Products, time.Since(loadStart).Seconds(), rssKiB(os.Getpid(), "VmRSS")/1024)

	rng := rand.New(rand.NewPCG(3, 4))
	bands := []string{"", "", "critical", "degraded", "healthy", "unknown"}
	words := []string{"orders", "ordrs", "customer", "custmer", "revenue", "email", "shipment", "ledger", "payments", "invoice", "prod", "domain7"}
	kinds := []struct {
		name string
		url  func() string
	}{
		{"mesh page", func() string {
			v := url.Values{}
			if rng.IntN(2) == 0 {
				v.Set("domain", fmt.Sprintf("domain%d", rng.IntN(20)))
			}
			v.Set("band", bands[rng.IntN(len(bands))])
			v.Set("offset", strconv.Itoa(100*rng.IntN(5)))
			return base + "/api/mesh?" + v.Encode()
		}},
		{"product page", func() string {
			return base + "/api/products/" + url.PathEscape(benchCatalogProduct(rng.IntN(c.Products)))
		}},
		{"search", func() string {
			q := words[rng.IntN(len(words))]
			if rng.IntN(3) == 0 {
				q += " " + words[rng.IntN(len(words))][:3]
			}
			return base + "/api/search?q=" + url.QueryEscape(q)
		}},
	}
	for _, k := range kinds {
		var server, client []time.Duration
		var slowest []slowRequest
		var gcBefore runtime.MemStats
		runtime.ReadMemStats(&gcBefore)
		for range c.Requests {
			u := k.url()
			t := time.Now()
			resp, err := http.Get(u)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", u, resp.Status)
			}
			client = append(client, time.Since(t))
			if d, ok := strings.CutPrefix(resp.Header.Get("Server-Timing"), "app;dur="); ok {
				ms, _ := strconv.ParseFloat(d, 64)
				d := time.Duration(ms * float64(time.Millisecond))
				server = append(server, d)
				slowest = append(slowest, slowRequest{u, d})
			}
		}
		var gcAfter runtime.MemStats
		runtime.ReadMemStats(&gcAfter)
		fmt.Fprintf(out, "%-13s %d requests: server %s; client %s; %d GCs\n", k.name, c.Requests, pcts(server), pcts(client), gcAfter.NumGC-gcBefore.NumGC)
		// The slowest requests, to tell a heavy request from a noisy moment.
		sort.Slice(slowest, func(i, j int) bool { return slowest[i].took > slowest[j].took })
		for _, r := range slowest[:min(5, len(slowest))] {
			fmt.Fprintf(out, "    %6.1fms %s\n", ms(r.took), strings.TrimPrefix(r.url, base))
		}
	}
	fmt.Fprintf(out, "process RSS peak %d MiB (catalog and this benchmark)\n", rssKiB(os.Getpid(), "VmHWM")/1024)
	cancel()
	return <-done
}

type slowRequest struct {
	url  string
	took time.Duration
}

func pcts(d []time.Duration) string {
	if len(d) == 0 {
		return "n/a"
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	return fmt.Sprintf("p50 %.1fms p95 %.1fms max %.1fms", ms(at(0.5)), ms(at(0.95)), ms(d[len(d)-1]))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func benchCatalogProduct(i int) string {
	return fmt.Sprintf("urn:mesh:product:domain%d:product_%d", i%20, i)
}

// catalogData is the SQL that generates the benchmark's mesh in
// ClickHouse itself (numbers()), far faster than sending it.
func catalogData(db string, n, fields int) []string {
	p := `concat('urn:mesh:product:domain', toString(number % 20), ':product_', toString(number))`
	ds := `concat('urn:mesh:dataset:warehouse:domain', toString(number % 20), '.product_', toString(number))`
	words := `['orders','customers','revenue','shipments','ledger','payments','invoices','sessions','campaigns','carriers']`
	fieldNames := fmt.Sprintf(`arrayMap(k -> concat(%s[(k %% 10) + 1], '_', toString(k)), range(%d))`, words, fields)
	// six layers: a product of layer l reads one product of layer l-1
	input := fmt.Sprintf(`if(number < %[1]d, emptyArrayString(), [concat('urn:mesh:dataset:warehouse:domain', toString((number - %[1]d) %% 20), '.product_', toString(number - %[1]d))])`, max(1, n/6))
	return []string{
		fmt.Sprintf(`INSERT INTO %[1]s.products (product_urn, domain, name, description, owners, tags, lifecycle, documentation_url, access_notes,
  output_datasets, input_datasets, freshness_slo_seconds, min_quality_pass_rate, emitter, event_id, event_time, event_time_ms)
SELECT %[2]s, concat('domain', toString(number %% 20)), concat('product_', toString(number)),
  concat('generated product about ', %[4]s[(number %% 10) + 1], ' number ', toString(number)), ['team:owners'], [%[4]s[(number %% 10) + 1]],
  'active', 'https://wiki/x', '', [%[3]s], %[6]s, 86400, 0.9, 'platform', toString(number), now() - 86400, (toUnixTimestamp(now()) - 86400) * 1000
FROM numbers(%[5]d)`, db, p, ds, words, n, input),
		fmt.Sprintf(`INSERT INTO %[1]s.dataset_declarations (dataset_urn, product_urn, domain, platform, description, schema_ref, field_names,
  field_types, field_descriptions, field_classifications, field_pii, event_id, event_time, event_time_ms)
SELECT %[3]s, %[2]s, concat('domain', toString(number %% 20)), 'warehouse', 'generated dataset', 'schema.v1', %[4]s,
  arrayMap(k -> 'string', range(%[5]d)), arrayMap(k -> concat('the ', toString(k), 'th field'), range(%[5]d)),
  arrayMap(k -> if(k = 1, 'restricted', 'internal'), range(%[5]d)), arrayMap(k -> toUInt8(k = 1), range(%[5]d)),
  toString(number), now() - 86400, (toUnixTimestamp(now()) - 86400) * 1000
FROM numbers(%[6]d)`, db, p, ds, fieldNames, fields, n),
		fmt.Sprintf(`INSERT INTO %[1]s.dataset_claims (dataset_urn, domain, product_urn, claimed_at, claimed_at_ms, event_id)
SELECT %[3]s, concat('domain', toString(number %% 20)), %[2]s, now() - 86400, (toUnixTimestamp(now()) - 86400) * 1000, toString(number)
FROM numbers(%[4]d)`, db, p, ds, n),
		fmt.Sprintf(`INSERT INTO %[1]s.scores_current (product_urn, domain, computed_at, computed_at_ms, health, trust, own_trust, health_band, trust_band,
  component_names, component_scores, component_weights, component_details, reasons, violations, problems, cause,
  root_cause_products, root_cause_hops, root_cause_bands, root_cause_signals)
SELECT %[2]s, concat('domain', toString(number %% 20)), now(), toUnixTimestamp(now()) * 1000,
  toFloat64(number %% 100), toFloat64((number * 7) %% 100), toFloat64((number * 7) %% 100),
  multiIf(number %% 100 >= 75, 'healthy', number %% 100 >= 50, 'degraded', 'critical'),
  multiIf((number * 7) %% 100 >= 75, 'healthy', (number * 7) %% 100 >= 50, 'degraded', 'critical'),
  ['health','completeness','adoption','quality','freshness','runs','discoverable','addressable','understandable','accessible','trustworthy','interoperable','secure'],
  arrayMap(k -> toFloat64((number + k) %% 100), range(13)), [0.5,0.3,0.2,0.6,0.2,0.2,0,0,0,0,0,0,0],
  arrayMap(k -> 'generated', range(13)), ['generated'], [], [], 'generated', [], [], [], []
FROM numbers(%[3]d)`, db, p, n),
		fmt.Sprintf(`INSERT INTO %[1]s.score_history (product_urn, domain, computed_at, computed_at_ms, kind, health, trust, health_band, trust_band,
  component_names, component_scores, component_weights, component_details, reasons, violations, cause)
SELECT concat('urn:mesh:product:domain', toString(intDiv(number, 7) %% 20), ':product_', toString(intDiv(number, 7))), concat('domain', toString(intDiv(number, 7) %% 20)),
  now() - (number %% 7) * 86400, (toUnixTimestamp(now()) - (number %% 7) * 86400) * 1000, 'snapshot',
  toFloat64((number * 13) %% 100), toFloat64((number * 17) %% 100), 'healthy', 'healthy', [], [], [], [], [], [], 'snapshot'
FROM numbers(%[2]d)`, db, n*7),
		fmt.Sprintf(`INSERT INTO %[1]s.quality_results (event_id, event_time, event_time_ms, emitter, dataset_urn, owner_domain, check_name, check_type, status, severity, message)
SELECT toString(number), now() - (number %% 3) * 3600, (toUnixTimestamp(now()) - (number %% 3) * 3600) * 1000, 'platform',
  concat('urn:mesh:dataset:warehouse:domain', toString(intDiv(number, 3) %% 20), '.product_', toString(intDiv(number, 3))), '', concat('check_', toString(number %% 3)), 'validity', 'PASS', 'high', ''
FROM numbers(%[2]d)`, db, n*3),
		fmt.Sprintf(`INSERT INTO %[1]s.usage_events (event_id, event_time, event_time_ms, emitter, dataset_urn, owner_domain, consumer_user, consumer_team, consumer_domain, consumer_tool, access_kind, rows_read, duration_ms)
SELECT toString(number), now() - (number %% 10) * 3600, (toUnixTimestamp(now()) - (number %% 10) * 3600) * 1000, 'platform',
  concat('urn:mesh:dataset:warehouse:domain', toString(intDiv(number, 5) %% 20), '.product_', toString(intDiv(number, 5))), '',
  concat('user_', toString(number %% 50)), 'analysts', 'finance', 'bi', 'query', 100, 10
FROM numbers(%[2]d)`, db, n*5),
	}
}
