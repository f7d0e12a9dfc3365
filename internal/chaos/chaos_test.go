//go:build chaos

// Package chaos_test is meshpulse's chaos suite (make chaos): the faults
// production causes, at full size, on the real servers. Each scenario prints
// its figures for RELIABILITY.md and fails if an event is lost or an analyst
// can see one twice. The short versions run in make test (internal/ingest).
package chaos_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/pkg/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// report prints a figure line for RELIABILITY.md.
func report(t *testing.T, format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	fmt.Println("CHAOS " + t.Name() + ": " + line)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func meshpulseBin(t *testing.T) string {
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "meshpulse-chaos-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "meshpulse")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/meshpulse")
		cmd.Dir = testenv.ModuleRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// proc is one `meshpulse ingest` child process.
type proc struct {
	t    *testing.T
	name string
	http string
	args []string
	cmd  *exec.Cmd
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startIngestor(t *testing.T, name string, args ...string) *proc {
	p := &proc{t: t, name: name, http: freePort(t), args: args}
	p.start()
	t.Cleanup(func() { p.kill(syscall.SIGKILL) })
	return p
}

func (p *proc) start() {
	args := append([]string{"ingest", "-http", p.http, "-log-level", "warn"}, p.args...)
	p.cmd = exec.Command(meshpulseBin(p.t), args...)
	stderr, _ := p.cmd.StderrPipe()
	p.cmd.Stdout = os.Stderr
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		last := ""
		for sc.Scan() {
			// Repeated retry lines during an outage are summarised.
			line := sc.Text()
			key := line
			if i := strings.Index(line, `"message"`); i >= 0 {
				key = line[i:]
			}
			if key != last {
				fmt.Fprintf(os.Stderr, "%s: %s\n", p.name, truncate(line, 300))
			}
			last = key
		}
	}()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// kill sends sig and waits for the exit; it reports how long that took.
func (p *proc) kill(sig syscall.Signal) time.Duration {
	if p.cmd == nil || p.cmd.ProcessState != nil {
		return 0
	}
	start := time.Now()
	_ = p.cmd.Process.Signal(sig)
	_ = p.cmd.Wait()
	return time.Since(start)
}

// peakRSS is the child's peak resident memory in MiB.
func (p *proc) peakRSS() float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// stored is the replica's count of stored records (its /metrics).
func (p *proc) stored() float64 {
	resp, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "meshpulse_ingest_records_total{") && strings.Contains(line, `outcome="stored"`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

// healthy is the replica's /healthz status code.
func (p *proc) healthy() int {
	resp, err := http.Get("http://" + p.http + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// env is a Kafka, a ClickHouse database and a loader.
type env struct {
	t       *testing.T
	brokers string
	client  *kgo.Client
	conn    driver.Conn
	sc      store.Config
	codecs  *events.Codecs
}

func newEnv(t *testing.T, brokers string, chAddr string, partitions int) *env {
	ctx := context.Background()
	sc := store.Config{Addr: chAddr, Database: "chaos_" + strings.ReplaceAll(uuid.NewString()[:8], "-", ""), User: "default"}
	conn, err := store.Open(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := store.Migrate(ctx, conn, sc.Database); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(100_000), kgo.ProducerBatchMaxBytes(2<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	if err := kafka.EnsureTopics(ctx, cl, partitions, 1, kafka.CoreTopics()...); err != nil {
		t.Fatal(err)
	}
	codecs, _ := events.NewCodecs()
	return &env{t: t, brokers: brokers, client: cl, conn: conn, sc: sc, codecs: codecs}
}

func (e *env) ingestArgs() []string {
	return []string{"-kafka", e.brokers, "-clickhouse", e.sc.Addr, "-clickhouse-database", e.sc.Database,
		"-kafka-partitions", "12", "-group", "chaos"}
}

// load produces n distinct usage events at about rate per second; it
// retries until every record is acknowledged and counts them in acked.
func (e *env) load(ctx context.Context, n, rate int, acked *atomic.Int64, encode func(*events.UsageEvent) []byte) error {
	const chunk = 1000
	start := time.Now()
	var errs atomic.Int64
	for done := 0; done < n && ctx.Err() == nil; done += chunk {
		for i := done; i < min(done+chunk, n); i++ {
			ev := &events.UsageEvent{Envelope: events.Envelope{EventID: uuid.NewString(), EventTime: time.Now().UTC().Truncate(time.Millisecond), Emitter: "platform"},
				DatasetURN: events.DatasetURN("warehouse", "t"+strconv.Itoa(i%200)), Consumer: events.Consumer{User: "u" + strconv.Itoa(i%5000)},
				AccessKind: "query", RowsRead: 1}
			var value []byte
			if encode != nil {
				value = encode(ev)
			} else {
				value, _ = e.codecs.Encode(ev)
			}
			e.client.Produce(ctx, &kgo.Record{Topic: "mesh.platform.usage", Key: []byte(ev.EventID), Value: value}, func(_ *kgo.Record, err error) {
				if err != nil {
					errs.Add(1)
					return
				}
				acked.Add(1)
			})
		}
		if rate > 0 {
			if wait := time.Duration(done+chunk)*time.Second/time.Duration(rate) - time.Since(start); wait > 0 {
				time.Sleep(wait)
			}
		}
	}
	if err := e.client.Flush(ctx); err != nil {
		return err
	}
	if n := errs.Load(); n > 0 {
		return fmt.Errorf("%d records not acknowledged", n)
	}
	return nil
}

func (e *env) count(q string) uint64 {
	var n uint64
	if err := e.conn.QueryRow(context.Background(), strings.ReplaceAll(q, "{db}", e.sc.Database)).Scan(&n); err != nil {
		e.t.Logf("%s: %v", q, err)
		return 0
	}
	return n
}

// exactlyOnce waits until every acknowledged event is stored and reports
// what an analyst sees.
func (e *env) exactlyOnce(produced int64, limit time.Duration) string {
	deadline := time.Now().Add(limit)
	distinctQ := "SELECT count() FROM (SELECT DISTINCT event_id FROM {db}.usage_events)"
	for e.count(distinctQ) < uint64(produced) && time.Now().Before(deadline) {
		time.Sleep(time.Second)
	}
	distinct := e.count(distinctQ)
	final := e.count("SELECT count() FROM {db}.usage_events FINAL")
	raw := e.count("SELECT count() FROM {db}.usage_events")
	line := fmt.Sprintf("produced=%d stored=%d lost=%d duplicates_visible=%d (raw rows %d before merges)",
		produced, distinct, produced-int64(distinct), int64(final)-int64(distinct), raw)
	if int64(distinct) != produced || final != distinct {
		e.t.Fatalf("not exactly once: %s", line)
	}
	return line
}

// TestChaosClickHouseOutage (a): 1M events, two ingestor replicas, the real
// ClickHouse server stopped for 60 s while a third replica joins and leaves.
func TestChaosClickHouseOutage(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	srv := testenv.PrivateClickHouse(t)
	e := newEnv(t, strings.Join(cluster.ListenAddrs(), ","), srv.Addr(), 12)
	args := append(e.ingestArgs(), "-stall-timeout", "20s")
	r1 := startIngestor(t, "r1", args...)
	r2 := startIngestor(t, "r2", args...)

	const n = 1_000_000
	var acked atomic.Int64
	ctx := context.Background()
	loadDone := make(chan error, 1)
	start := time.Now()
	go func() { loadDone <- e.load(ctx, n, 8_000, &acked, nil) }()
	at := func(d time.Duration) { time.Sleep(time.Until(start.Add(d))) }

	at(20 * time.Second)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	report(t, "clickhouse stopped at +%.0fs with %d events produced", time.Since(start).Seconds(), acked.Load())
	sawUnhealthy := make(chan string, 2)
	go func() {
		for _, p := range []*proc{r1, r2} {
			for time.Since(stopped) < 60*time.Second {
				if code := p.healthy(); code == http.StatusServiceUnavailable {
					sawUnhealthy <- fmt.Sprintf("%s /healthz 503 %.0fs into the outage", p.name, time.Since(stopped).Seconds())
					break
				}
				time.Sleep(time.Second)
			}
		}
	}()
	at(35 * time.Second)
	r3 := startIngestor(t, "r3", args...)
	report(t, "third replica joined at +%.0fs (outage)", time.Since(start).Seconds())
	at(60 * time.Second)
	took := r3.kill(syscall.SIGTERM)
	report(t, "third replica left at +%.0fs: SIGTERM to exit %.1fs with clickhouse down (grace 10s)", time.Since(start).Seconds(), took.Seconds())
	time.Sleep(time.Until(stopped.Add(60 * time.Second)))
	before := []float64{r1.stored(), r2.stored()}
	srv2, err := srv.Restart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv2.Stop() })
	recovered := time.Now()
	report(t, "clickhouse back at +%.0fs after a %.0fs outage", time.Since(start).Seconds(), recovered.Sub(stopped).Seconds())
	// Every replica progresses within 30 s of the recovery.
	for k, p := range []*proc{r1, r2} {
		for p.stored() <= before[k] {
			if time.Since(recovered) > 30*time.Second {
				t.Fatalf("%s stored nothing within 30s of the recovery", p.name)
			}
			time.Sleep(200 * time.Millisecond)
		}
		report(t, "%s storing again %.1fs after the recovery", p.name, time.Since(recovered).Seconds())
	}
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}
	report(t, "%s", e.exactlyOnce(acked.Load(), 5*time.Minute))
	close(sawUnhealthy)
	for s := range sawUnhealthy {
		report(t, "%s", s)
	}
	report(t, "peak RSS: r1 %.0f MiB, r2 %.0f MiB, r3 %.0f MiB", r1.peakRSS(), r2.peakRSS(), r3.peakRSSAtExit())
}

func (p *proc) peakRSSAtExit() float64 {
	if p.cmd.ProcessState == nil {
		return p.peakRSS()
	}
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return float64(ru.Maxrss) / 1024
	}
	return 0
}

// TestChaosKillLoop (b): kill -9 of a random replica, 20 times, during 1M
// events; each comes back at once under its static instance id.
func TestChaosKillLoop(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	e := newEnv(t, strings.Join(cluster.ListenAddrs(), ","), testenv.ClickHouseAddr(t), 12)
	var ps []*proc
	for k := range 3 {
		ps = append(ps, startIngestor(t, fmt.Sprintf("r%d", k), append(e.ingestArgs(), "-instance-id", fmt.Sprintf("chaos-%d", k))...))
	}
	const n = 1_000_000
	var acked atomic.Int64
	loadDone := make(chan error, 1)
	go func() { loadDone <- e.load(context.Background(), n, 10_000, &acked, nil) }()
	rng := rand.New(rand.NewPCG(20, 26))
	var peak float64
	for k := range 20 {
		time.Sleep(time.Duration(2000+rng.IntN(2500)) * time.Millisecond)
		p := ps[rng.IntN(len(ps))]
		peak = max(peak, p.peakRSS())
		p.kill(syscall.SIGKILL)
		p.start()
		t.Logf("kill -9 #%d: %s at %d events produced, restarted", k+1, p.name, acked.Load())
	}
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}
	report(t, "20 kill -9 during %d events (3 replicas, static membership): %s", n, e.exactlyOnce(acked.Load(), 5*time.Minute))
	for _, p := range ps {
		peak = max(peak, p.peakRSS())
	}
	report(t, "peak RSS of a replica: %.0f MiB", peak)
}

// TestChaosBrokerRestart (c): the Apache Kafka broker is restarted while two
// replicas ingest and a producer publishes.
func TestChaosBrokerRestart(t *testing.T) {
	root := testenv.ModuleRoot(t)
	dir := t.TempDir()
	script := filepath.Join(root, "scripts", "kafka-up")
	if out, err := exec.Command(script, "start", dir).CombinedOutput(); err != nil {
		testenv.Unavailable(t, "kafka-up: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(script, "stop", dir).Run() })
	envb, _ := os.ReadFile(filepath.Join(dir, "env"))
	brokers := ""
	for _, l := range strings.Split(string(envb), "\n") {
		if b, ok := strings.CutPrefix(l, "BROKERS="); ok {
			brokers = b
		}
	}
	e := newEnv(t, brokers, testenv.ClickHouseAddr(t), 12)
	r1 := startIngestor(t, "r1", e.ingestArgs()...)
	r2 := startIngestor(t, "r2", e.ingestArgs()...)
	const n = 300_000
	var acked atomic.Int64
	loadDone := make(chan error, 1)
	go func() { loadDone <- e.load(context.Background(), n, 10_000, &acked, nil) }()
	time.Sleep(10 * time.Second)
	start := time.Now()
	if out, err := exec.Command(script, "restart", dir).CombinedOutput(); err != nil {
		t.Fatalf("restart: %v\n%s", err, out)
	}
	report(t, "broker restarted at %d events produced; back in %.1fs", acked.Load(), time.Since(start).Seconds())
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}
	report(t, "%s", e.exactlyOnce(acked.Load(), 5*time.Minute))
	report(t, "peak RSS: r1 %.0f MiB, r2 %.0f MiB", r1.peakRSS(), r2.peakRSS())
}

// TestChaosRegistryOutage (d): Confluent-framed records while the schema
// registry is down for 30 s, and a replica restarted during the outage:
// nothing is dead-lettered, everything is stored once.
func TestChaosRegistryOutage(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	e := newEnv(t, strings.Join(cluster.ListenAddrs(), ","), testenv.ClickHouseAddr(t), 12)
	reg := testenv.SchemaRegistry(t)
	id := reg.Register(e.codecs.Current(events.FamilyUsage).Schema())
	frame := func(ev *events.UsageEvent) []byte {
		soe, _ := e.codecs.Encode(ev)
		return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(id)), soe[10:]...)
	}
	args := append(e.ingestArgs(), "-schema-registry", reg.URL)
	reg.SetDown(true) // the ingestors start while the registry is down
	r1 := startIngestor(t, "r1", args...)
	r2 := startIngestor(t, "r2", args...)
	const n = 200_000
	var acked atomic.Int64
	loadDone := make(chan error, 1)
	go func() { loadDone <- e.load(context.Background(), n, 10_000, &acked, frame) }()
	time.Sleep(15 * time.Second)
	took := r2.kill(syscall.SIGTERM)
	report(t, "replica restarted during the registry outage: SIGTERM to exit %.1fs", took.Seconds())
	r2.start()
	time.Sleep(15 * time.Second)
	reg.SetDown(false)
	report(t, "registry back after 30s; %d registry requests refused meanwhile", reg.Lookups())
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}
	report(t, "%s", e.exactlyOnce(acked.Load(), 5*time.Minute))
	ends, err := kadm.NewClient(e.client).ListEndOffsets(context.Background(), events.TopicDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	var dead int64
	ends.Each(func(o kadm.ListedOffset) { dead += o.Offset })
	if dead != 0 {
		t.Fatalf("%d dead letters during a registry outage", dead)
	}
	report(t, "dead letters: 0; peak RSS r1 %.0f MiB, r2 %.0f MiB", r1.peakRSS(), r2.peakRSSAtExit())
}

// TestChaosOversizePoison (f): 30 records of about 1 MB that fail
// validation, scattered through 100,000 good ones: each is dead-lettered,
// cut to fit, and every good record is stored.
func TestChaosOversizePoison(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	e := newEnv(t, strings.Join(cluster.ListenAddrs(), ","), testenv.ClickHouseAddr(t), 12)
	r1 := startIngestor(t, "r1", e.ingestArgs()...)
	rng := rand.New(rand.NewPCG(3, 30))
	poisonAt := map[int]bool{}
	for len(poisonAt) < 30 {
		poisonAt[rng.IntN(100_000)] = true
	}
	poisonAt[0], poisonAt[99_999] = true, true
	var acked atomic.Int64
	k := 0
	encode := func(ev *events.UsageEvent) []byte {
		defer func() { k++ }()
		if poisonAt[k] {
			ev.Consumer.User = strings.Repeat("p", 1_000_000)
		}
		b, _ := e.codecs.Encode(ev)
		return b
	}
	if err := e.load(context.Background(), 100_000, 0, &acked, encode); err != nil {
		t.Fatal(err)
	}
	good := int64(100_000 - len(poisonAt))
	deadline := time.Now().Add(3 * time.Minute)
	for e.count("SELECT count() FROM {db}.usage_events FINAL") < uint64(good) && time.Now().Before(deadline) {
		time.Sleep(time.Second)
	}
	stored := e.count("SELECT count() FROM {db}.usage_events FINAL")
	cl, _ := kgo.NewClient(kgo.SeedBrokers(strings.Split(e.brokers, ",")...), kgo.ConsumeTopics(events.TopicDeadLetter), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	var dls []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for len(dls) < len(poisonAt) && ctx.Err() == nil {
		dls = append(dls, cl.PollFetches(ctx).Records()...)
	}
	cut := 0
	for _, r := range dls {
		for _, h := range r.Headers {
			if h.Key == "mesh.dlq.truncated" {
				cut++
			}
		}
	}
	if int64(stored) != good || len(dls) != len(poisonAt) || cut != len(poisonAt) {
		t.Fatalf("stored %d of %d good, %d dead letters (%d cut) of %d poison", stored, good, len(dls), cut, len(poisonAt))
	}
	report(t, "%d oversize poison records among 100,000: %d dead-lettered and cut (%d bytes each), %d good stored, 0 lost; peak RSS %.0f MiB",
		len(poisonAt), len(dls), len(dls[0].Value), stored, r1.peakRSS())
}
