// Package bench holds meshpulse's benchmark commands. They print figures
// for BENCHMARKS.md; they are commands, never timed tests.
package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/chserver"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// IngestConfig of the end-to-end ingest benchmark.
type IngestConfig struct {
	Events     int
	Partitions int
	ClickHouse string   // external ClickHouse; empty starts a private one
	Self       string   // path of the meshpulse binary, run as the ingestor child
	ChildArgs  []string // extra ingestor flags
	Replicas   int      // ingestor processes in the group (1 when 0)
}

// Ingest pre-loads Events usage events into an in-process Kafka, then runs
// the ingestor as a child process (so its memory is its own) until
// ClickHouse holds them all, and prints throughput and the child's peak RSS.
func Ingest(ctx context.Context, c IngestConfig, out io.Writer) error {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return err
	}
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")

	chAddr := c.ClickHouse
	if chAddr == "" {
		dir, err := os.MkdirTemp("", "meshpulse-bench-ch-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		srv, err := chserver.Start(ctx, dir, 0, 0)
		if err != nil {
			return err
		}
		defer srv.Stop()
		chAddr = srv.Addr()
	}
	db := "bench_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	conn, err := store.Open(ctx, store.Config{Addr: chAddr, Database: db, User: "default"})
	if err != nil {
		return err
	}
	defer conn.Close()
	defer conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db)

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(200_000))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(ctx, cl, c.Partitions, 1, kafka.CoreTopics()...); err != nil {
		return err
	}
	codecs, err := events.NewCodecs()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "loading %d usage events into kfake (%d partitions)...\n", c.Events, c.Partitions)
	loadStart := time.Now()
	if err := load(ctx, cl, codecs, c.Events); err != nil {
		return err
	}
	fmt.Fprintf(out, "loaded in %.1fs\n", time.Since(loadStart).Seconds())
	stages, err := measureStages(ctx, brokers, conn, db, codecs, c.Events, out)
	if err != nil {
		return err
	}

	args := append([]string{"ingest", "-kafka", brokers, "-clickhouse", chAddr, "-clickhouse-database", db,
		"-http", "", "-log-level", "warn", "-group", "bench"}, c.ChildArgs...)
	replicas := max(c.Replicas, 1)
	start := time.Now()
	var children []*exec.Cmd
	defer func() {
		for _, child := range children {
			_ = child.Process.Signal(syscall.SIGTERM)
			_ = child.Wait()
		}
	}()
	for range replicas {
		child := exec.CommandContext(ctx, c.Self, args...)
		child.Stdout, child.Stderr = os.Stderr, os.Stderr
		if err := child.Start(); err != nil {
			return err
		}
		children = append(children, child)
	}

	var firstRow time.Time
	var peakRSS int64 // of the largest replica
	for {
		for _, child := range children {
			if rss := rssKiB(child.Process.Pid, "VmHWM"); rss > peakRSS {
				peakRSS = rss
			}
		}
		var n uint64
		// The table may not exist until the child has migrated.
		if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".usage_events").Scan(&n); err == nil {
			if n > 0 && firstRow.IsZero() {
				firstRow = time.Now()
			}
			if n >= uint64(c.Events) {
				break
			}
		}
		for _, child := range children {
			if child.ProcessState != nil {
				return fmt.Errorf("an ingestor stopped before storing every event")
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
	total := time.Since(start)
	steady := time.Since(firstRow)
	var cpu time.Duration // of every replica, before they stop
	for _, child := range children {
		cpu += cpuTime(child.Process.Pid)
	}
	var distinct uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM (SELECT event_id FROM "+db+".usage_events FINAL)").Scan(&distinct); err != nil {
		return err
	}
	fmt.Fprintf(out, "events:                 %d (distinct stored %d), %d ingestor replica(s), %d partitions\n", c.Events, distinct, replicas, c.Partitions)
	fmt.Fprintf(out, "end to end:             %.2fs  %.0f events/s (from ingestor process start)\n", total.Seconds(), float64(c.Events)/total.Seconds())
	fmt.Fprintf(out, "steady:                 %.2fs  %.0f events/s (from the first stored row)\n", steady.Seconds(), float64(c.Events)/steady.Seconds())
	fmt.Fprintf(out, "ingestor peak RSS:      %.0f MiB (the largest replica)\n", float64(peakRSS)/1024)
	fmt.Fprintf(out, "ingestor CPU:           %.2fs over the replicas, %.1f µs per event\n", cpu.Seconds(), float64(cpu.Microseconds())/float64(c.Events))
	slowest, name := stages.slowest()
	e2e := float64(c.Events) / steady.Seconds()
	fmt.Fprintf(out, "end to end / slowest stage alone (%s): %.2f\n", name, e2e/slowest)
	return nil
}

// stageRates are each stage of the ingest path measured alone, in events/s.
type stageRates struct{ consume, decode, insert float64 }

func (s stageRates) slowest() (float64, string) {
	rate, name := s.consume, "broker consume"
	if s.decode < rate {
		rate, name = s.decode, "decode on one core"
	}
	if s.insert < rate {
		rate, name = s.insert, "clickhouse insert"
	}
	return rate, name
}

// measureStages runs each stage of the ingest path alone on the loaded
// records, in the same sitting as the end-to-end run: the broker serving
// them to a consumer that does nothing else, decoding and normalising them
// on one core, and ClickHouse storing the resulting rows (batches of 30,000
// into a database of its own).
func measureStages(ctx context.Context, brokers string, conn driver.Conn, db string, codecs *events.Codecs, n int, out io.Writer) (stageRates, error) {
	var r stageRates
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumeTopics("mesh.platform.usage"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(16<<20))
	if err != nil {
		return r, err
	}
	values := make([][]byte, 0, n)
	start := time.Now()
	for len(values) < n && ctx.Err() == nil {
		cl.PollRecords(ctx, 5000).EachRecord(func(rec *kgo.Record) { values = append(values, rec.Value) })
	}
	cl.Close()
	r.consume = float64(len(values)) / time.Since(start).Seconds()
	fmt.Fprintf(out, "stage alone, broker consume:      %.0f events/s\n", r.consume)

	limits := events.DefaultLimits()
	now := time.Now()
	var batches []*store.Batch
	b := &store.Batch{}
	start = time.Now()
	for _, v := range values {
		ev, err := codecs.Decode(ctx, v)
		if err != nil {
			return r, err
		}
		if err := ev.ValidateWith(limits, now); err != nil {
			return r, err
		}
		b.AddUsage(ev.(*events.UsageEvent), "")
		if b.Len() == 30_000 {
			batches = append(batches, b)
			b = &store.Batch{}
		}
	}
	batches = append(batches, b)
	r.decode = float64(len(values)) / time.Since(start).Seconds()
	fmt.Fprintf(out, "stage alone, decode on one core:  %.0f events/s\n", r.decode)

	stageDB := db + "_stage"
	if _, err := store.Migrate(ctx, conn, stageDB); err != nil {
		return r, err
	}
	defer conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+stageDB)
	w := store.NewWriter(conn, stageDB)
	start = time.Now()
	for _, b := range batches {
		if err := w.Insert(ctx, []*store.Batch{b}); err != nil {
			return r, err
		}
	}
	r.insert = float64(len(values)) / time.Since(start).Seconds()
	fmt.Fprintf(out, "stage alone, clickhouse insert:   %.0f events/s (batches of 30,000)\n", r.insert)
	return r, nil
}

// load produces n distinct usage events, pre-encoded, with varied datasets and consumers.
func load(ctx context.Context, cl *kgo.Client, codecs *events.Codecs, n int) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	datasets := make([]string, 200)
	for i := range datasets {
		datasets[i] = events.DatasetURN("warehouse", fmt.Sprintf("domain%d.table_%d", i%8, i))
	}
	errc := make(chan error, 1)
	for i := range n {
		ev := &events.UsageEvent{
			Envelope:   events.Envelope{EventID: uuid.NewString(), EventTime: now.Add(-time.Duration(i%3600) * time.Second), Emitter: "platform"},
			DatasetURN: datasets[i%len(datasets)],
			Consumer:   events.Consumer{User: "user-" + strconv.Itoa(i%5000), Team: "team-" + strconv.Itoa(i%40), Domain: "domain" + strconv.Itoa(i%8), Tool: "looker"},
			AccessKind: "query", RowsRead: int64(i % 10_000), DurationMs: int64(i % 900),
		}
		b, err := codecs.Encode(ev)
		if err != nil {
			return err
		}
		cl.Produce(ctx, &kgo.Record{Topic: "mesh.platform.usage", Key: []byte(ev.DatasetURN), Value: b}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// cpuTime is the user and system CPU time a process has used so far
// (/proc/<pid>/stat, in clock ticks of 1/100 s).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b)[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// rssKiB reads a memory figure (VmRSS, VmHWM) of a process in KiB.
func rssKiB(pid int, field string) int64 {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field+":"); ok {
			v, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return v
		}
	}
	return 0
}

// listenerPid finds the process listening on a loopback TCP port (for a
// server this benchmark did not start, such as an external ClickHouse), or
// 0: the socket's inode from /proc/net/tcp, then the process holding it.
func listenerPid(port int) int {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0
	}
	suffix := fmt.Sprintf(":%04X", port)
	inode := ""
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		// local address, state 0A (LISTEN), inode
		if len(f) > 9 && strings.HasSuffix(f[1], suffix) && f[3] == "0A" {
			inode = f[9]
			break
		}
	}
	if inode == "" {
		return 0
	}
	want := "socket:[" + inode + "]"
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		for _, fd := range fds {
			if l, _ := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name())); l == want {
				return pid
			}
		}
	}
	return 0
}
