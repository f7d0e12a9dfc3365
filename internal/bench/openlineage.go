package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/kafka"
)

// OpenLineageConfig of the OpenLineage HTTP benchmark.
type OpenLineageConfig struct {
	Pairs      int           // START + COMPLETE pairs of the throughput phase
	Clients    int           // concurrent HTTP clients, each with a keep-alive connection
	Rate       int           // events/s of the fixed-rate phase
	Duration   time.Duration // length of the fixed-rate phase
	ClickHouse string        // external ClickHouse; empty starts a private one
	Self       string        // the meshpulse binary, run as endpoint and ingestor children
}

const benchKey = "bench-0123456789abcdef"

// OpenLineage measures OpenLineage over HTTP to queryable in ClickHouse:
// the endpoint (meshpulse openlineage) and the ingestor run as child
// processes against an in-process Kafka and a private ClickHouse, all on
// this machine's cores with the load generator. Events are START and
// COMPLETE pairs of runs reading 2 datasets and writing 1, each with a
// schema facet of 6 fields.
//
// Phase 1 posts Pairs×2 events as fast as Clients keep-alive clients can
// and reports events/s until all are queryable, and POST latencies.
// Phase 2 posts at Rate events/s for Duration (open loop: latency counts
// from each event's scheduled time, so a stall is not hidden).
func OpenLineage(ctx context.Context, c OpenLineageConfig, out io.Writer) error {
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
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...))
	if err != nil {
		return err
	}
	if err := kafka.EnsureTopics(ctx, cl, 6, 1, append(kafka.CoreTopics(), kafka.DomainTopics([]string{"bench"})...)...); err != nil {
		cl.Close()
		return err
	}
	cl.Close()

	port, err := freePort()
	if err != nil {
		return err
	}
	endpoint := fmt.Sprintf("http://127.0.0.1:%d/api/v1/lineage", port)
	var ops [2]string // /metrics and /debug/pprof/ of each child
	for i := range ops {
		p, err := freePort()
		if err != nil {
			return err
		}
		ops[i] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	fmt.Fprintf(out, "endpoint %s (profile: http://%s/debug/pprof/profile), ingestor profile: http://%s/debug/pprof/profile\n", endpoint, ops[0], ops[1])
	children := []*exec.Cmd{
		exec.CommandContext(ctx, c.Self, "openlineage", "-kafka", brokers, "-listen", fmt.Sprintf("127.0.0.1:%d", port),
			"-api-keys", "bench:"+benchKey, "-http", ops[0], "-log-level", "warn"),
		exec.CommandContext(ctx, c.Self, "ingest", "-kafka", brokers, "-clickhouse", sc.Addr, "-clickhouse-database", sc.Database,
			"-http", ops[1], "-log-level", "warn", "-group", "bench", "-migrate=false"),
	}
	for _, ch := range children {
		ch.Stdout, ch.Stderr = os.Stderr, os.Stderr
		if err := ch.Start(); err != nil {
			return err
		}
		defer func(ch *exec.Cmd) {
			_ = ch.Process.Signal(syscall.SIGTERM)
			_ = ch.Wait()
		}(ch)
	}
	httpc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: c.Clients, MaxIdleConnsPerHost: c.Clients, IdleConnTimeout: time.Minute}}
	post := func(body []byte) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+benchKey)
		resp, err := httpc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	// Ready: the endpoint answers and the ingestor stores.
	warm := olBenchEvents(1, "warm")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if err := post(warm[0]); err == nil {
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("the endpoint did not accept an event within a minute: %v", err)
		}
	}
	stored := func() uint64 {
		var n uint64
		_ = conn.QueryRow(ctx, "SELECT count() FROM "+sc.Database+".openlineage_events").Scan(&n)
		return n
	}
	for deadline := time.Now().Add(time.Minute); stored() == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return fmt.Errorf("the ingestor stored nothing within a minute")
		}
	}
	base := stored()

	// Phase 1: throughput.
	bodies := olBenchEvents(c.Pairs, "load")
	n := len(bodies)
	sizes := 0
	for _, b := range bodies {
		sizes += len(b)
	}
	fmt.Fprintf(out, "phase 1: %d events (%d START+COMPLETE pairs, 2 inputs, 1 output, schema facets; %d bytes on average), %d keep-alive clients\n",
		n, c.Pairs, sizes/n, c.Clients)
	// CPU of each part, so that the throughput can be read as CPU per
	// event: what two cores allow at that cost.
	chPid := 0
	if _, port, err := net.SplitHostPort(sc.Addr); err == nil {
		p, _ := strconv.Atoi(port)
		chPid = listenerPid(p)
	}
	cpuNow := func() [4]time.Duration {
		return [4]time.Duration{cpuTime(children[0].Process.Pid), cpuTime(children[1].Process.Pid), cpuTime(chPid), processCPU()}
	}
	cpuBefore := cpuNow()
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range c.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t := time.Now()
				if err := post(bodies[i]); err != nil {
					failed.Add(1)
				}
				lat[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	posted := time.Since(start)
	for stored() < base+uint64(n) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("only %d of %d events queryable after 10 minutes", stored()-base, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	queryable := time.Since(start)
	cpuAfter := cpuNow()
	fmt.Fprintf(out, "  posted:    %d events in %.2fs: %.0f events/s accepted (201 after Kafka's ack), %d failed\n", n, posted.Seconds(), float64(n)/posted.Seconds(), failed.Load())
	fmt.Fprintf(out, "  queryable: all %d in ClickHouse after %.2fs: %.0f events/s HTTP to queryable\n", n, queryable.Seconds(), float64(n)/queryable.Seconds())
	fmt.Fprintf(out, "  POST latency: %s\n", percentiles(lat))
	var parts []string
	var cpuTotal time.Duration
	for i, name := range []string{"endpoint", "ingestor", "ClickHouse", "kfake and the clients"} {
		if i == 2 && chPid == 0 {
			parts = append(parts, "ClickHouse not measured (its process was not found)")
			continue
		}
		d := cpuAfter[i] - cpuBefore[i]
		cpuTotal += d
		parts = append(parts, fmt.Sprintf("%s %.1f", name, float64(d.Microseconds())/float64(n)))
	}
	perEvent := float64(cpuTotal.Microseconds()) / float64(n)
	fmt.Fprintf(out, "  CPU per event (µs): %s; total %.1f µs, so %d cores allow at most %.0f events/s at this cost\n",
		strings.Join(parts, ", "), perEvent, runtime.NumCPU(), float64(runtime.NumCPU())*1e6/perEvent)

	// Phase 2: fixed rate, open loop.
	total := int(float64(c.Rate) * c.Duration.Seconds())
	bodies = olBenchEvents(total/2+1, "rate")[:total]
	fmt.Fprintf(out, "phase 2: %d events/s for %s (%d events), open loop\n", c.Rate, c.Duration, total)
	lat = make([]time.Duration, total)
	jobs := make(chan int, total)
	start = time.Now()
	interval := time.Second / time.Duration(c.Rate)
	for range c.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				due := start.Add(time.Duration(i) * interval)
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				if err := post(bodies[i]); err != nil {
					failed.Add(1)
				}
				lat[i] = time.Since(due)
			}
		}()
	}
	for i := range total {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	took := time.Since(start)
	fmt.Fprintf(out, "  sent %d in %.2fs (%.0f events/s), %d failed\n", total, took.Seconds(), float64(total)/took.Seconds(), failed.Load())
	fmt.Fprintf(out, "  POST latency from the scheduled time: %s\n", percentiles(lat))
	for i, name := range []string{"endpoint", "ingestor"} {
		fmt.Fprintf(out, "%s peak RSS: %.0f MiB\n", name, float64(rssKiB(children[i].Process.Pid, "VmHWM"))/1024)
	}
	return nil
}

// olBenchEvents makes START and COMPLETE events of pairs runs, as an
// OpenLineage client would send them.
func olBenchEvents(pairs int, prefix string) [][]byte {
	schema := `"schema": {"_producer": "https://bench", "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet", "fields": [` +
		`{"name": "id", "type": "BIGINT", "description": "key"}, {"name": "customer_id", "type": "BIGINT"}, {"name": "amount", "type": "DECIMAL(12,2)"},` +
		`{"name": "currency", "type": "VARCHAR"}, {"name": "status", "type": "VARCHAR"}, {"name": "created_at", "type": "TIMESTAMP"}]}`
	now := time.Now().UTC()
	out := make([][]byte, 0, 2*pairs)
	for i := range pairs {
		run := uuid.NewString()
		job := fmt.Sprintf("%s_job_%d", prefix, i%500)
		for k, state := range []string{"START", "COMPLETE"} {
			out = append(out, []byte(fmt.Sprintf(`{"eventType": %q, "eventTime": %q, "producer": "https://github.com/meshpulse/meshpulse/bench", `+
				`"schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent", `+
				`"run": {"runId": %q}, "job": {"namespace": "bench-etl", "name": %q}, `+
				`"inputs": [{"namespace": "postgres://db:5432", "name": "shop.public.orders_%d", "facets": {%s}}, {"namespace": "postgres://db:5432", "name": "shop.public.customers_%d", "facets": {%s}}], `+
				`"outputs": [{"namespace": "s3://lake", "name": "marts/orders_%d", "facets": {%s}}]}`,
				state, now.Add(time.Duration(k)*time.Second).Format(time.RFC3339Nano), run, job, i%1000, schema, i%1000, schema, i%1000, schema)))
		}
	}
	return out
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
