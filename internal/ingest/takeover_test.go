package ingest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// ingestorProc is one `meshpulse ingest` child process.
type ingestorProc struct {
	cmd  *exec.Cmd
	name string
}

func buildMeshpulse(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "meshpulse")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/meshpulse")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build meshpulse: %v\n%s", err, out)
	}
	return bin
}

func (r *rig) startProc(bin, name, group, chAddr string) *ingestorProc {
	r.t.Helper()
	cmd := exec.Command(bin, "ingest", "-kafka", r.brokers, "-clickhouse", chAddr, "-clickhouse-database", r.db,
		"-group", group, "-http", "", "-log-level", "warn", "-kafka-partitions", "6", "-flush-interval", "200ms",
		"-session-timeout", "8s")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	p := &ingestorProc{cmd: cmd, name: name}
	r.t.Cleanup(func() { p.signal(syscall.SIGKILL) })
	return p
}

func (p *ingestorProc) signal(sig syscall.Signal) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	_ = p.cmd.Wait()
}

// produceUsage publishes n distinct usage events over about spread time.
func (r *rig) produceUsage(n int, spread time.Duration, produced *atomic.Int64) {
	r.t.Helper()
	const chunk = 2000
	for done := 0; done < n; done += chunk {
		var recs []*kgo.Record
		for i := done; i < min(done+chunk, n); i++ {
			ev := &events.UsageEvent{Envelope: events.Envelope{EventID: uuid.NewString(), EventTime: time.Now().UTC().Truncate(time.Millisecond), Emitter: "platform"},
				DatasetURN: events.DatasetURN("wh", "t"+strconv.Itoa(i%50)), Consumer: events.Consumer{User: "u" + strconv.Itoa(i%97)}, AccessKind: "query", RowsRead: 1}
			b, err := r.codecs.Encode(ev)
			if err != nil {
				r.t.Error(err)
				return
			}
			recs = append(recs, &kgo.Record{Topic: "mesh.platform.usage", Key: []byte(ev.DatasetURN), Value: b})
		}
		if err := r.client.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			r.t.Error(err)
			return
		}
		produced.Add(int64(len(recs)))
		time.Sleep(spread * chunk / time.Duration(n))
	}
}

// exactlyOnce waits until every produced event is stored, then reports
// produced, stored, duplicates and lost as an analyst sees them, and the raw
// rows before and after ClickHouse merged replayed rows away.
func (r *rig) exactlyOnce(phase string, produced int64) {
	r.t.Helper()
	r.waitForWithin(90*time.Second, phase+": all events stored", func() bool {
		return r.count("SELECT count() FROM (SELECT DISTINCT event_id FROM {db}.usage_events)") >= uint64(produced)
	})
	distinct := r.count("SELECT count() FROM (SELECT DISTINCT event_id FROM {db}.usage_events)")
	final := r.count("SELECT count() FROM {db}.usage_events FINAL")
	raw := r.count("SELECT count() FROM {db}.usage_events")
	// Replayed rows (a batch stored but not committed before the kill) are
	// physically removed only when ClickHouse merges; OPTIMIZE FINAL is a
	// no-op while another merge runs, so it is repeated, within a bound.
	merged := raw
	for range 40 {
		if err := r.conn.Exec(context.Background(), "OPTIMIZE TABLE "+r.db+".usage_events FINAL"); err != nil {
			r.t.Fatal(err)
		}
		if merged = r.count("SELECT count() FROM {db}.usage_events"); merged == distinct {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	line := fmt.Sprintf("%s: produced=%d stored=%d duplicates=%d lost=%d (raw rows %d before merge, %d after)",
		phase, produced, distinct, int64(final)-int64(distinct), produced-int64(distinct), raw, merged)
	r.t.Log(line)
	fmt.Println(line)
	if int64(distinct) != produced || final != distinct || int64(merged) != produced {
		r.t.Fatalf("not exactly once: %s", line)
	}
}

// TestKillAndTakeover: two ingestor processes share the group; one is killed
// with SIGKILL mid-load and the other takes over its partitions; then both
// are restarted one after the other. ClickHouse holds every event exactly once.
func TestKillAndTakeover(t *testing.T) {
	r := newRig(t)
	if err := kafka.EnsureTopics(context.Background(), r.client, 6, 1, "mesh.platform.usage"); err != nil {
		t.Fatal(err)
	}
	bin := buildMeshpulse(t)
	chAddr := testenv.ClickHouseAddr(t)
	const n = 60_000
	var produced atomic.Int64

	a := r.startProc(bin, "a", "g-takeover", chAddr)
	b := r.startProc(bin, "b", "g-takeover", chAddr)
	done := make(chan struct{})
	go func() { defer close(done); r.produceUsage(n, 6*time.Second, &produced) }()
	r.waitFor("load under way", func() bool { return produced.Load() >= n/3 })
	a.signal(syscall.SIGKILL)
	t.Logf("killed ingestor a with SIGKILL after %d events produced", produced.Load())
	<-done
	r.exactlyOnce("kill -9", produced.Load())

	// Rolling restart of both, under load.
	a = r.startProc(bin, "a2", "g-takeover", chAddr)
	done = make(chan struct{})
	go func() { defer close(done); r.produceUsage(n, 6*time.Second, &produced) }()
	r.waitFor("second load under way", func() bool { return produced.Load() >= n+n/4 })
	b.signal(syscall.SIGTERM)
	b = r.startProc(bin, "b2", "g-takeover", chAddr)
	r.waitFor("second load half done", func() bool { return produced.Load() >= n+n/2 })
	a.signal(syscall.SIGTERM)
	a = r.startProc(bin, "a3", "g-takeover", chAddr)
	<-done
	r.exactlyOnce("rolling restart", produced.Load())
	a.signal(syscall.SIGTERM)
	b.signal(syscall.SIGTERM)
}
