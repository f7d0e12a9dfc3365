package catalog_test

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/catalog"
	"github.com/meshpulse/meshpulse/internal/demo"
	"github.com/meshpulse/meshpulse/internal/ingest"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/scorer"
	"github.com/meshpulse/meshpulse/internal/scorer/model"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/pkg/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

//go:embed testdata/axe.min.js
var axeSource string

// stack is the demo mesh (its generator, the ingestor, the scorer) and the
// catalog over it.
type stack struct {
	url     string
	brokers []string
	codecs  *events.Codecs
}

func startStack(t *testing.T) *stack {
	t.Helper()
	brokers := testenv.Kafka(t)
	sc, conn := testenv.ClickHouse(t)
	kc := kafka.Config{Brokers: strings.Join(brokers, ","), Partitions: 1, Replication: 1}
	admin, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := kafka.EnsureTopics(context.Background(), admin, 1, 1, append(kafka.CoreTopics(), kafka.DomainTopics(demo.Domains)...)...); err != nil {
		t.Fatal(err)
	}
	codecs, _ := events.NewCodecs()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	ctx, cancel := context.WithCancel(context.Background())
	var stops []chan error
	run := func(f func(context.Context) error) {
		done := make(chan error, 1)
		stops = append(stops, done)
		go func() { done <- f(ctx) }()
	}
	t.Cleanup(func() {
		cancel()
		for _, d := range stops {
			<-d
		}
	})

	icfg := ingest.Defaults()
	icfg.FlushInterval = 100 * time.Millisecond
	ing, err := ingest.New(icfg, kc.Opts(), store.NewWriter(conn, sc.Database), codecs, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(ing.Run)

	// The demo's incident starts at once, so that sales:orders and its
	// downstream products have a history to draw.
	gcl, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gcl.Close)
	gen, err := demo.New(demo.Config{Tick: 500 * time.Millisecond, ReadsPerTick: 20, IncidentStart: 4 * time.Second, IncidentEnd: time.Hour}, gcl, codecs, log)
	if err != nil {
		t.Fatal(err)
	}
	run(gen.Run)

	scfg := scorer.Defaults()
	scfg.Tick = 500 * time.Millisecond
	scfg.SessionTimeout = 6 * time.Second
	scfg.Replica = "catalog-test"
	pol := model.DefaultPolicy()
	pol.Windows = model.Windows{Quality: model.Duration{Duration: time.Minute}, Runs: model.Duration{Duration: time.Minute},
		Adoption: model.Duration{Duration: 5 * time.Minute}}
	sco, err := scorer.New(scfg, &pol, kc.Opts(), conn, sc.Database, codecs, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(sco.Run)

	// Refresh is an hour: the catalog starts before the demo has declared
	// anything and must pick the products up from their first scores.
	cat, err := catalog.New(catalog.Config{Listen: "127.0.0.1:0", Refresh: time.Hour, LivePoll: 500 * time.Millisecond},
		conn, sc.Database, kc.Opts(), codecs, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cat.Close)
	addr := make(chan string, 1)
	run(func(ctx context.Context) error { return cat.Run(ctx, func(a string) { addr <- a }) })
	s := &stack{url: "http://" + <-addr + "/", brokers: brokers, codecs: codecs}
	// Ready when the catalog shows sales:orders with a score and its
	// downstream products.
	deadline := time.Now().Add(90 * time.Second)
	for {
		var page struct {
			Product struct{ URN string } `json:"product"`
			History []json.RawMessage    `json:"history"`
			Lineage struct {
				Nodes []json.RawMessage `json:"nodes"`
			} `json:"lineage"`
		}
		if err := getJSON(s.url+"api/products/"+demo.IncidentProduct, &page); err == nil && len(page.History) >= 2 && len(page.Lineage.Nodes) >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the catalog did not show %s with a history and its lineage within 90 s", demo.IncidentProduct)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return s
}

// browser starts Debian's chromium, headless.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Unavailable(t, "chromium not found (scripts/install-deps installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 1000))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancel3)
	if err := chromedp.Run(ctx); err != nil {
		testenv.Unavailable(t, "chromium does not start: %v", err)
	}
	return ctx
}

// screenshot keeps a picture of the page in docs/screenshots when
// MESHPULSE_SCREENSHOTS is set (the README shows them).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("MESHPULSE_SCREENSHOTS") == "" {
		return
	}
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 80)); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(testenv.ModuleRoot(t), "docs", "screenshots")
	_ = os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, name+".jpg"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// axe runs axe-core on the page and fails on serious or critical
// accessibility violations.
func axe(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	var out string
	err := chromedp.Run(ctx,
		chromedp.Evaluate(axeSource, nil),
		chromedp.Evaluate(`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations.filter(v => v.impact === "serious" || v.impact === "critical").map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))))`,
			&out, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if err != nil {
		t.Fatalf("axe on %s: %v", page, err)
	}
	if out != "[]" {
		t.Errorf("accessibility violations on %s: %s", page, out)
	}
}

func TestCatalogInABrowser(t *testing.T) {
	s := startStack(t)
	ctx := browser(t)

	// The mesh page lists the demo's products, worst first.
	var names []string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(s.url),
		chromedp.WaitVisible(`#mesh tbody tr`),
		chromedp.Evaluate(`[...document.querySelectorAll("#mesh tbody tr")].map(tr => tr.dataset.urn)`, &names),
	); err != nil {
		t.Fatal(err)
	}
	if len(names) != 12 || !contains(names, demo.IncidentProduct) {
		t.Fatalf("the mesh page lists %d products %v, want the demo's 12 with %s", len(names), names, demo.IncidentProduct)
	}
	axe(t, ctx, "the mesh page")
	screenshot(t, ctx, "mesh")

	// A search with a typo finds sales:orders first, as you type.
	var first string
	if err := chromedp.Run(ctx,
		chromedp.Click(`#q`),
		chromedp.SendKeys(`#q`, "ordrs"),
		chromedp.WaitVisible(`#results li[data-urn]`),
		chromedp.AttributeValue(`#results li[data-urn]`, "data-urn", &first, nil),
	); err != nil {
		t.Fatal(err)
	}
	if first != demo.IncidentProduct {
		t.Errorf(`search "ordrs" ranks %s first, want %s`, first, demo.IncidentProduct)
	}

	// Keyboard: Enter on the selected result opens the product page; the
	// history plot has points and the lineage graph its downstream products.
	var points, nodes, hash string
	var listed []string
	if err := chromedp.Run(ctx,
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(`#history canvas`),
		chromedp.WaitVisible(`#graph canvas`),
		chromedp.AttributeValue(`#history`, "data-points", &points, nil),
		chromedp.AttributeValue(`#graph`, "data-nodes", &nodes, nil),
		chromedp.Evaluate(`location.hash`, &hash),
		chromedp.Evaluate(`[...document.querySelectorAll('ul[aria-label="Products in the lineage graph"] a')].map(a => a.textContent)`, &listed),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hash, "sales%3Aorders") {
		t.Errorf("Enter on the first result went to %q", hash)
	}
	if n := atoi(points); n < 2 {
		t.Errorf("the history plot has %s points", points)
	}
	for _, want := range []string{"finance:ledger (downstream)", "logistics:shipments (downstream)", "marketing:campaign_attribution (downstream)"} {
		if !contains(listed, want) {
			t.Errorf("the lineage graph of sales:orders lacks %s: %v (%s nodes)", want, listed, nodes)
		}
	}
	axe(t, ctx, "the product page")
	screenshot(t, ctx, "product")

	// A ScoreChanged published now shows on the open page within 5 s, no reload.
	marker := "browser test " + uuid.NewString()[:8]
	publishAlert(t, s, marker)
	var toast string
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := chromedp.Run(tctx,
		chromedp.WaitVisible(fmt.Sprintf(`//div[contains(@class, "toast")][contains(., %q)]`, marker), chromedp.BySearch),
		chromedp.Text(`.toast:last-child`, &toast),
	); err != nil {
		t.Fatalf("the published ScoreChanged did not appear within 5 s: %v", err)
	}

	// The dataset page shows the PII fields.
	var pii []string
	ds := events.DatasetURN("warehouse", "sales.orders")
	if err := chromedp.Run(ctx,
		chromedp.Navigate(s.url+"#/dataset/"+strings.ReplaceAll(ds, ":", "%3A")),
		chromedp.WaitVisible(`table tbody tr`),
		chromedp.Evaluate(`[...document.querySelectorAll("table tbody tr")].filter(tr => tr.textContent.includes("PII")).map(tr => tr.cells[0].textContent)`, &pii),
	); err != nil {
		t.Fatal(err)
	}
	if !contains(pii, "customer_email") {
		t.Errorf("the dataset page marks %v as PII, want customer_email", pii)
	}
	axe(t, ctx, "the dataset page")
	screenshot(t, ctx, "dataset")
}

func publishAlert(t *testing.T, s *stack, cause string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	h, tr := 12.5, 20.0
	ev := &events.ScoreChanged{Envelope: events.Envelope{EventID: uuid.NewString(), EventTime: time.Now().UTC().Truncate(time.Millisecond), Emitter: "scorer"},
		ProductURN: demo.IncidentProduct, Domain: "sales", NewHealth: &h, NewTrust: &tr, NewHealthBand: "critical", NewTrustBand: "critical", Cause: cause}
	b, err := s.codecs.Encode(ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: events.TopicScores, Key: []byte(ev.ProductURN), Value: b}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func getJSON(url string, into any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func atoi(s string) int {
	var n int
	fmt.Sscan(s, &n)
	return n
}
