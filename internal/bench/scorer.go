package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/chserver"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/scorer"
	"github.com/meshpulse/meshpulse/internal/scorer/model"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/pkg/events"
	"github.com/meshpulse/meshpulse/pkg/lineage"
)

// ScorerConfig of the scorer benchmark.
type ScorerConfig struct {
	Products    int
	Days        int // days of usage, quality and runs
	ClickHouse  string
	Keep        bool   // keep the generated database (to query it afterwards)
	CPUProfile  string // profile the incremental passes into this file
	FullProfile string // profile the second full pass into this file
	MemProfile  string // heap profile after the first full pass (and at the live heap's peak, in MemProfile+".peak")
	Database    string // reuse a database kept by an earlier run instead of generating one
	Kafka       string // external brokers; empty runs kfake in this process (its memory then counts in the heap)
	Changes     []int  // products changed before each incremental pass
}

// Scorer generates a mesh of Products products (20 domains, lineage up to
// six hops deep, Days days of usage, checks and runs), runs one scorer
// replica, and reports the full pass and incremental passes after changing
// 10, 100 and 1000 products.
func Scorer(ctx context.Context, c ScorerConfig, out io.Writer) error {
	chAddr, stopCH, err := clickhouse(ctx, c.ClickHouse)
	if err != nil {
		return err
	}
	defer stopCH()
	sc := store.Config{Addr: chAddr, Database: "bench_" + strings.ReplaceAll(uuid.NewString()[:8], "-", ""), User: "default"}
	if c.Database != "" {
		sc.Database = c.Database
	}
	conn, err := store.Open(ctx, sc)
	if err != nil {
		return err
	}
	defer conn.Close()
	if c.Keep || c.Database != "" {
		fmt.Fprintf(out, "database %s is kept\n", sc.Database)
	} else {
		defer conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+sc.Database)
	}
	if _, err := store.Migrate(ctx, conn, sc.Database); err != nil {
		return err
	}
	w := store.NewWriter(conn, sc.Database)
	if c.Database != "" {
		// The generated mesh as it was; the scores of the earlier run go,
		// so that the first pass writes every product again.
		var n uint64
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+sc.Database+".products FINAL").Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("database %s holds no products: generate one with -keep first", sc.Database)
		}
		c.Products = int(n)
		for _, t := range []string{"scores_current", "score_history"} {
			if err := conn.Exec(ctx, "TRUNCATE TABLE "+sc.Database+"."+t); err != nil {
				return err
			}
		}
		fmt.Fprintf(out, "reusing %s: %d products\n", sc.Database, n)
	} else {
		fmt.Fprintf(out, "generating %d products with %d days of signals...\n", c.Products, c.Days)
		genStart := time.Now()
		rows, err := generateMesh(ctx, w, c.Products, c.Days)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "generated %d rows in %.1fs\n", rows, time.Since(genStart).Seconds())
	}

	brokers := c.Kafka
	if brokers == "" {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return err
		}
		defer cluster.Close()
		brokers = strings.Join(cluster.ListenAddrs(), ",")
	} else {
		// A shared broker: a topic set of this run's own.
		if err := deleteTopics(ctx, brokers, kafka.ScorerTopics()...); err != nil {
			return err
		}
	}
	kc := kafka.Config{Brokers: brokers, Partitions: 6, Replication: 1}
	cl, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		return err
	}
	if err := kafka.EnsureTopics(ctx, cl, 6, 1, kafka.ScorerTopics()...); err != nil {
		return err
	}
	defer cl.Close()

	passes := make(chan scorer.PassStats, 16)
	cfg := scorer.Defaults()
	cfg.Tick = 500 * time.Millisecond
	cfg.FullPass = time.Hour
	cfg.SessionTimeout = 10 * time.Second
	cfg.Replica = "bench"
	// A group of its own: two benchmarks on one broker must not share the
	// products between them.
	cfg.Group = "bench-scorer-" + uuid.NewString()[:8]
	// CPU the process used since the previous pass (the scorer is idle in
	// between): told apart from the wall time, it shows waiting on
	// ClickHouse and Kafka.
	lastCPU := processCPU()
	cpuOf := map[time.Duration]time.Duration{}
	var cpuMu sync.Mutex
	cfg.OnPass = func(p scorer.PassStats) {
		now := processCPU()
		cpuMu.Lock()
		cpuOf[p.Took], lastCPU = now-lastCPU, now
		cpuMu.Unlock()
		passes <- p
	}
	cpu := func(p scorer.PassStats) string {
		cpuMu.Lock()
		defer cpuMu.Unlock()
		return fmt.Sprintf("%.3fs CPU on %d cores", cpuOf[p.Took].Seconds(), runtime.GOMAXPROCS(0))
	}
	pol := model.DefaultPolicy()
	codecs, _ := events.NewCodecs()
	s, err := scorer.New(cfg, &pol, kc.Opts(), conn, sc.Database, codecs, zerolog.Nop(), nil)
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var peakProfile string
	if c.MemProfile != "" {
		peakProfile = c.MemProfile + ".peak"
	}
	peak := samplePeakHeap(runCtx, peakProfile)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()

	wait := func() (scorer.PassStats, error) {
		select {
		case p := <-passes:
			return p, nil
		case err := <-done:
			return scorer.PassStats{}, fmt.Errorf("scorer stopped: %v", err)
		case <-time.After(5 * time.Minute):
			return scorer.PassStats{}, fmt.Errorf("no pass within 5 minutes")
		}
	}
	full, err := wait()
	if err != nil {
		return err
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(out, "full pass (first):      %d products in %.2fs (%.0f products/s), %d scores written, %d alerts\n",
		full.Affected, full.Took.Seconds(), float64(full.Affected)/full.Took.Seconds(), full.Scored, full.Alerts)
	printPhases(out, full)
	fmt.Fprintf(out, "memory after full pass: heap in use %.0f MiB (after GC), heap peak %.0f MiB (sampled), live heap peak %.0f MiB (marked by a GC), process RSS peak %.0f MiB\n",
		float64(ms.HeapInuse)/(1<<20), float64(peak.objects.Load())/(1<<20), float64(peak.live.Load())/(1<<20), float64(rssKiB(os.Getpid(), "VmHWM"))/1024)
	if c.MemProfile != "" {
		if err := writeHeapProfile(c.MemProfile); err != nil {
			return err
		}
	}

	// quiet waits until the scorer has seen everything (no pass for 3 s),
	// so that the next pass holds only the changes made after it.
	// It also waits for ClickHouse to finish merging what was just written
	// (at most a minute), so that a pass is measured on a settled server.
	quiet := func() {
		for {
			select {
			case <-passes:
			case <-time.After(3 * time.Second):
				for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
					var merges uint64
					if err := conn.QueryRow(ctx, "SELECT count() FROM system.merges").Scan(&merges); err != nil || merges == 0 {
						break
					}
				}
				return
			}
		}
	}
	if c.CPUProfile != "" {
		// The incremental passes only: the full passes are measured apart.
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	rng := rand.New(rand.NewPCG(7, 8))
	// A check of this run's own fails on each changed product, so that a
	// reused database changes as much as a fresh one.
	check := fmt.Sprintf("bench_change_%d", time.Now().Unix())
	for _, k := range c.Changes {
		quiet()
		b := &store.Batch{}
		now := time.Now().UTC().Truncate(time.Millisecond)
		for range k {
			i := rng.IntN(c.Products)
			b.AddQuality(&events.QualityResult{Envelope: events.Envelope{EventID: uuid.NewString(), EventTime: now, Emitter: "platform"},
				DatasetURN: benchDataset(i), CheckName: check, CheckType: "validity", Status: "FAIL", Severity: "high"}, "")
		}
		if err := w.Insert(ctx, []*store.Batch{b}); err != nil {
			return err
		}
		var recs []*kgo.Record
		for _, urn := range b.Touched(store.TouchedQuality) {
			recs = append(recs, kafka.ChangeRecord(urn, kafka.ChangeQuality))
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return err
		}
		for {
			p, err := wait()
			if err != nil {
				return err
			}
			if !p.Full && p.Affected > 0 {
				fmt.Fprintf(out, "incremental, %4d changed: %5d products with new signals, %5d scores written (with their downstream), %d alerts, in %.3fs (%s)\n",
					k, p.Affected, p.Scored, p.Alerts, p.Took.Seconds(), cpu(p))
				printPhases(out, p)
				break
			}
		}
	}

	if c.CPUProfile != "" {
		pprof.StopCPUProfile()
	}

	// A second full pass: every product evaluated again, nothing changed,
	// so nothing is written.
	quiet()
	if c.FullProfile != "" {
		f, err := os.Create(c.FullProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	s.RequestFullPass()
	for {
		p, err := wait()
		if err != nil {
			return err
		}
		if p.Full {
			fmt.Fprintf(out, "full pass (again):      %d products in %.2fs (%.0f products/s), %d scores written\n",
				p.Affected, p.Took.Seconds(), float64(p.Affected)/p.Took.Seconds(), p.Scored)
			printPhases(out, p)
			break
		}
	}
	if c.FullProfile != "" {
		pprof.StopCPUProfile()
	}

	// Lineage graph load, as other programs would do it.
	start := time.Now()
	g, err := lineage.LoadClickHouse(ctx, conn, sc.Database)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "lineage load:           %d products from ClickHouse in %.3fs\n", len(g.Products()), time.Since(start).Seconds())
	cancel()
	return <-done
}

func benchProduct(i int) string {
	return events.ProductURN(fmt.Sprintf("domain%d", i%20), fmt.Sprintf("product_%d", i))
}
func benchDataset(i int) string {
	return events.DatasetURN("warehouse", fmt.Sprintf("domain%d.product_%d", i%20, i))
}

// generateMesh writes products in layers (each product reads one to three
// products of the layer before; six layers make lineage six hops deep) and
// days of signals for each.
func generateMesh(ctx context.Context, w *store.Writer, n, days int) (int, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	layer := func(i int) int { return i * 6 / n }
	rows := 0
	flush := func(b *store.Batch) error {
		rows += b.Len()
		return w.Insert(ctx, []*store.Batch{b})
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	b := &store.Batch{}
	for i := range n {
		var inputs []string
		if l := layer(i); l > 0 {
			lo, hi := n*(l-1)/6, n*l/6
			for range 1 + rng.IntN(3) {
				inputs = append(inputs, benchDataset(lo+rng.IntN(hi-lo)))
			}
		}
		fields := []events.DatasetField{{Name: "id", Type: "string", Description: "id", Classification: "internal"},
			{Name: "email", Type: "string", Classification: "restricted", PII: true}, {Name: "amount", Type: "decimal"}}
		b.AddMetadata(&events.ProductMetadata{Envelope: events.Envelope{EventID: uuid.NewString(), EventTime: now.Add(-time.Duration(days) * 24 * time.Hour)},
			ProductURN: benchProduct(i), Domain: fmt.Sprintf("domain%d", i%20), Name: fmt.Sprintf("product_%d", i), Description: "generated",
			Owners: []string{"o"}, Lifecycle: "active", Inputs: inputs, SLO: &events.SLO{FreshnessSeconds: ptr(int64(86400))},
			Outputs: []events.OutputDataset{{DatasetURN: benchDataset(i), Fields: fields}}})
		for d := range days {
			day := now.Add(-time.Duration(d) * 24 * time.Hour)
			for k := range 3 {
				status := "PASS"
				if rng.Float64() < 0.05 {
					status = "FAIL"
				}
				b.AddQuality(&events.QualityResult{Envelope: events.Envelope{EventID: uuid.NewString(), EventTime: day.Add(-time.Duration(k) * time.Hour)},
					DatasetURN: benchDataset(i), CheckName: fmt.Sprint("check_", k), CheckType: "validity", Status: status, Severity: "high"}, "")
			}
			state := "COMPLETE"
			if rng.Float64() < 0.03 {
				state = "FAIL"
			}
			b.AddLineage(&events.LineageRun{Envelope: events.Envelope{EventID: uuid.NewString(), EventTime: day},
				JobURN: events.JobURN(fmt.Sprintf("domain%d", i%20), fmt.Sprintf("build_%d", i)), RunID: uuid.NewString(), State: state,
				Inputs: inputs, Outputs: []string{benchDataset(i)}})
			for u := range 10 {
				b.AddUsage(&events.UsageEvent{Envelope: events.Envelope{EventID: uuid.NewString(), EventTime: day.Add(-time.Duration(u) * time.Minute)},
					DatasetURN: benchDataset(i), Consumer: events.Consumer{User: fmt.Sprint("user_", rng.IntN(50))}, AccessKind: "query"}, "")
			}
		}
		if b.Len() >= 200_000 {
			if err := flush(b); err != nil {
				return rows, err
			}
			b = &store.Batch{}
		}
	}
	return rows, flush(b)
}

// freshDatabase is a migrated database of its own on the ClickHouse at
// addr (a private server when empty); cleanup drops it and stops the server.
func freshDatabase(ctx context.Context, addr string) (store.Config, driver.Conn, func(), error) {
	chAddr, stopCH, err := clickhouse(ctx, addr)
	if err != nil {
		return store.Config{}, nil, nil, err
	}
	sc := store.Config{Addr: chAddr, Database: "bench_" + strings.ReplaceAll(uuid.NewString()[:8], "-", ""), User: "default"}
	conn, err := store.Open(ctx, sc)
	if err != nil {
		stopCH()
		return store.Config{}, nil, nil, err
	}
	cleanup := func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+sc.Database)
		conn.Close()
		stopCH()
	}
	if _, err := store.Migrate(ctx, conn, sc.Database); err != nil {
		cleanup()
		return store.Config{}, nil, nil, err
	}
	return sc, conn, cleanup, nil
}

// clickhouse returns an address: the given one, or a private server's.
func clickhouse(ctx context.Context, addr string) (string, func(), error) {
	if addr != "" {
		return addr, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "meshpulse-bench-ch-")
	if err != nil {
		return "", nil, err
	}
	srv, err := chserver.Start(ctx, dir, 0, 0)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return srv.Addr(), func() { srv.Stop(); os.RemoveAll(dir) }, nil
}

func ptr[T any](v T) *T { return &v }

func printPhases(out io.Writer, p scorer.PassStats) {
	var parts []string
	for _, ph := range p.Phases {
		parts = append(parts, fmt.Sprintf("%s %.3fs", ph.Name, ph.Took.Seconds()))
	}
	fmt.Fprintf(out, "    %s\n", strings.Join(parts, ", "))
}

// deleteTopics removes topics (and waits until they are gone), so a run on
// a shared broker starts from nothing.
func deleteTopics(ctx context.Context, brokers string, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteTopics(ctx, topics...); err != nil {
		return err
	}
	for range 100 {
		listed, err := adm.ListTopics(ctx, topics...)
		gone := err == nil
		for _, d := range listed {
			gone = gone && d.Err != nil // a deleted topic is listed with UNKNOWN_TOPIC_OR_PARTITION
		}
		if gone {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("topics %v not deleted", topics)
}

// heapPeaks are the largest heaps seen while the benchmark runs.
type heapPeaks struct {
	objects atomic.Uint64 // live and not yet collected objects, sampled every 20ms
	live    atomic.Uint64 // live objects as marked by the latest GC
}

// samplePeakHeap records the heap's peaks until ctx ends. With profile
// set, it writes a heap profile there each time the live heap reaches a
// new peak, so the file ends up showing what was live at the largest.
func samplePeakHeap(ctx context.Context, profile string) *heapPeaks {
	var peaks heapPeaks
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peaks.objects.Load() {
				peaks.objects.Store(v)
			}
			if v := sample[1].Value.Uint64(); v > peaks.live.Load() {
				peaks.live.Store(v)
				if profile != "" {
					writeHeapProfile(profile)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return &peaks
}

// writeHeapProfile writes the heap profile as of the latest GC to path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = pprof.WriteHeapProfile(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// processCPU is the user and system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
