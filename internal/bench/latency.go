package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/scorer"
	"github.com/meshpulse/meshpulse/internal/scorer/model"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// LatencyConfig of the latency benchmark.
type LatencyConfig struct {
	QueryableRate int           // events/s while measuring event → queryable
	ScoreRate     int           // events/s of background load while measuring event → ScoreChanged
	Duration      time.Duration // of each phase
	ClickHouse    string
	Self          string // the meshpulse binary, run as the ingestor child
}

// Latency measures, with the default ingestor (a child process) and the
// default scorer tick, how long an event takes to become queryable in
// ClickHouse under a load of QueryableRate events/s, and how long a quality
// result takes to turn into a ScoreChanged on mesh.scores under a load of
// ScoreRate events/s. Probes ride along the load: usage events on a dataset
// of their own (found through the primary key, so looking costs nothing),
// and quality results that flip a product between healthy and degraded.
func Latency(ctx context.Context, c LatencyConfig, out io.Writer) error {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return err
	}
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	sc, conn, cleanup, err := freshDatabase(ctx, c.ClickHouse)
	if err != nil {
		return err
	}
	defer cleanup()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ProducerLinger(2*time.Millisecond), kgo.MaxBufferedRecords(500_000))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(ctx, cl, 6, 1, append(kafka.CoreTopics(), kafka.DomainTopics([]string{"bench"})...)...); err != nil {
		return err
	}
	codecs, _ := events.NewCodecs()

	child := exec.CommandContext(ctx, c.Self, "ingest", "-kafka", brokers, "-clickhouse", sc.Addr, "-clickhouse-database", sc.Database,
		"-http", "", "-log-level", "warn", "-group", "bench", "-migrate=false")
	child.Stdout, child.Stderr = os.Stderr, os.Stderr
	if err := child.Start(); err != nil {
		return err
	}
	defer func() {
		_ = child.Process.Signal(syscall.SIGTERM)
		_ = child.Wait()
	}()

	// The ingestor is consuming once a first event is stored.
	warm := &events.UsageEvent{Envelope: events.Envelope{EventID: uuid.NewString(), EventTime: time.Now().UTC().Truncate(time.Millisecond), Emitter: "platform"},
		DatasetURN: events.DatasetURN("warehouse", "warm.up"), Consumer: events.Consumer{User: "warm"}, AccessKind: "query"}
	wb, _ := codecs.Encode(warm)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "mesh.platform.usage", Value: wb}).FirstErr(); err != nil {
		return err
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+sc.Database+".usage_events").Scan(&n); err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the ingestor stored nothing within a minute")
		}
	}

	// Phase 1: event → queryable at QueryableRate.
	probeDS := events.DatasetURN("warehouse", "latency.probe")
	sent := sync.Map{} // probe user -> produce time
	var produced atomic.Int64
	lctx, stopLoad := context.WithTimeout(ctx, c.Duration)
	loadDone := make(chan error, 1)
	go func() {
		loadDone <- steadyLoad(lctx, cl, codecs, c.QueryableRate, &produced, func(k int) *events.UsageEvent {
			if k%(c.QueryableRate/10) != 0 { // ten probes a second
				return nil
			}
			user := "probe-" + uuid.NewString()[:8]
			sent.Store(user, time.Now())
			return &events.UsageEvent{DatasetURN: probeDS, Consumer: events.Consumer{User: user}, AccessKind: "query"}
		})
	}()
	var lat []time.Duration
	seen := map[string]bool{}
	poll := time.NewTicker(20 * time.Millisecond)
	for done := false; !done; {
		select {
		case err := <-loadDone:
			if err != nil {
				stopLoad()
				return err
			}
			done = true
		case <-poll.C:
		}
		rows, err := conn.Query(ctx, "SELECT consumer_user FROM "+sc.Database+".usage_events WHERE dataset_urn = ?", probeDS)
		if err != nil {
			continue
		}
		now := time.Now()
		for rows.Next() {
			var u string
			if rows.Scan(&u) == nil && !seen[u] {
				seen[u] = true
				if t0, ok := sent.Load(u); ok {
					lat = append(lat, now.Sub(t0.(time.Time)))
				}
			}
		}
		rows.Close()
	}
	stopLoad()
	poll.Stop()
	elapsed := c.Duration.Seconds()
	fmt.Fprintf(out, "event → queryable at %d events/s (%.0f achieved): %d probes, %s\n", c.QueryableRate, float64(produced.Load())/elapsed, len(lat), percentiles(lat))

	// Phase 2: event → ScoreChanged under ScoreRate events/s.
	product, ds := events.ProductURN("bench", "probe"), events.DatasetURN("warehouse", "bench.probe")
	p, _ := events.NewProducer(cl, codecs, "bench")
	if err := p.ProduceSync(ctx, &events.ProductMetadata{ProductURN: product, Domain: "bench", Name: "probe", Description: "latency probe",
		Owners: []string{"bench"}, Lifecycle: "active", SLO: &events.SLO{FreshnessSeconds: ptr[int64](3600)},
		Outputs: []events.OutputDataset{{DatasetURN: ds, Fields: []events.DatasetField{{Name: "id", Type: "string", Classification: "internal"}}}}},
		&events.LineageRun{JobURN: events.JobURN("bench", "probe"), RunID: "r", State: "COMPLETE", Outputs: []string{ds}},
		&events.QualityResult{DatasetURN: ds, CheckName: "probe", CheckType: "validity", Status: "PASS", Severity: "critical"}); err != nil {
		return err
	}
	cfg := scorer.Defaults() // the default tick and full pass
	cfg.Replica = "bench"
	pol := model.DefaultPolicy()
	s, err := scorer.New(cfg, &pol, []kgo.Opt{kgo.SeedBrokers(cluster.ListenAddrs()...)}, conn, sc.Database, codecs, zerolog.Nop(), nil)
	if err != nil {
		return err
	}
	sctx, stopScorer := context.WithCancel(ctx)
	defer stopScorer()
	go func() { _ = s.Run(sctx) }()
	watch, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(events.TopicScores))
	if err != nil {
		return err
	}
	defer watch.Close()
	alerts := make(chan *events.ScoreChanged, 100)
	go func() {
		for sctx.Err() == nil {
			watch.PollFetches(sctx).EachRecord(func(r *kgo.Record) {
				if ev, err := codecs.Decode(sctx, r.Value); err == nil && ev.(*events.ScoreChanged).ProductURN == product {
					alerts <- ev.(*events.ScoreChanged)
				}
			})
		}
	}()
	select {
	case <-alerts: // its first score
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("no first score for the probe product")
	}
	lctx, stopLoad = context.WithTimeout(ctx, c.Duration)
	defer stopLoad()
	produced.Store(0)
	go func() {
		_ = steadyLoad(lctx, cl, codecs, c.ScoreRate, &produced, func(int) *events.UsageEvent { return nil })
	}()
	var scoreLat []time.Duration
	status := []string{"FAIL", "PASS"}
	for k := 0; lctx.Err() == nil; k++ {
		start := time.Now()
		if err := p.ProduceSync(ctx, &events.QualityResult{DatasetURN: ds, CheckName: "probe", CheckType: "validity", Status: status[k%2], Severity: "critical"}); err != nil {
			return err
		}
		select {
		case <-alerts:
			scoreLat = append(scoreLat, time.Since(start))
		case <-time.After(30 * time.Second):
			return fmt.Errorf("no ScoreChanged within 30s of a quality %s", status[k%2])
		}
		time.Sleep(500 * time.Millisecond)
	}
	fmt.Fprintf(out, "event → ScoreChanged under %d events/s (%.0f achieved): %d flips, %s\n", c.ScoreRate, float64(produced.Load())/elapsed, len(scoreLat), percentiles(scoreLat))
	return nil
}

// steadyLoad produces usage events at rate per second until ctx ends; probe
// may replace the k-th event with one of its own.
func steadyLoad(ctx context.Context, cl *kgo.Client, codecs *events.Codecs, rate int, produced *atomic.Int64, probe func(k int) *events.UsageEvent) error {
	const chunk = 500
	start := time.Now()
	var failed atomic.Int64
	for k := 0; ctx.Err() == nil; k += chunk {
		for i := k; i < k+chunk; i++ {
			ev := probe(i)
			if ev == nil {
				ev = &events.UsageEvent{DatasetURN: events.DatasetURN("warehouse", fmt.Sprintf("load.t%d", i%200)),
					Consumer: events.Consumer{User: fmt.Sprint("u", i%5000)}, AccessKind: "query"}
			}
			ev.EventID, ev.EventTime, ev.Emitter = uuid.NewString(), time.Now().UTC().Truncate(time.Millisecond), "platform"
			b, err := codecs.Encode(ev)
			if err != nil {
				return err
			}
			cl.Produce(ctx, &kgo.Record{Topic: "mesh.platform.usage", Key: []byte(ev.EventID), Value: b}, func(_ *kgo.Record, err error) {
				if err != nil && ctx.Err() == nil {
					failed.Add(1)
				}
			})
		}
		produced.Add(chunk)
		if wait := time.Duration(k+chunk)*time.Second/time.Duration(rate) - time.Since(start); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
	}
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d records not produced", n)
	}
	return nil
}

func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return fmt.Sprintf("p50 %s, p99 %s, max %s", at(0.5).Round(time.Millisecond), at(0.99).Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
}
