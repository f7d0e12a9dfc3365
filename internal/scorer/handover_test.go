package scorer_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// TestHandoversDoNotAlert: twelve products sit just below the healthy
// border, held healthy by hysteresis. Three scorer processes share them;
// replicas are killed (SIGKILL) and restarted, and one is stopped (SIGTERM),
// in a loop, so every share changes hands several times. Nothing about the
// products changes, so nothing may be alerted beyond their first scores, and
// every event id is published once.
func TestHandoversDoNotAlert(t *testing.T) {
	r := newRig(t, 6)
	bin := filepath.Join(t.TempDir(), "meshpulse")
	build := exec.Command("go", "build", "-o", bin, "./cmd/meshpulse")
	build.Dir = testenv.ModuleRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// A border at 95 that scores of 94.3 sit just below.
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte("bands: {healthy: 95, degraded: 60, hysteresis: 5}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const n = 12
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("border_%d", i)
	}
	runs := func(b *store.Batch, name, state string, k int) {
		for range k {
			b.AddLineage(&events.LineageRun{Envelope: env(), JobURN: events.JobURN("platform", "build-"+name), RunID: uuid.NewString(), State: state, Outputs: []string{ds(name)}})
		}
	}
	r.insert(func(b *store.Batch) {
		for _, name := range names {
			declare(b, "sales", name)
			for k := range 10 {
				b.AddQuality(&events.QualityResult{Envelope: env(), DatasetURN: ds(name), CheckName: fmt.Sprint("c", k), CheckType: "validity", Status: "PASS", Severity: "medium"}, "")
			}
			runs(b, name, "COMPLETE", 10)
			for u := range 10 {
				b.AddUsage(&events.UsageEvent{Envelope: env(), DatasetURN: ds(name), Consumer: events.Consumer{User: fmt.Sprint("u", u)}, AccessKind: "query"}, "")
			}
		}
	})

	type replica struct {
		name string
		cmd  *exec.Cmd
	}
	start := func(rp *replica) {
		rp.cmd = exec.Command(bin, "score", "-kafka", strings.Join(r.seeds, ","), "-clickhouse", r.sc.Addr, "-clickhouse-database", r.sc.Database,
			"-policy", policy, "-tick", "200ms", "-full-pass", "2s", "-session-timeout", "6s", "-http", "", "-replica", rp.name, "-log-level", "warn")
		rp.cmd.Stdout, rp.cmd.Stderr = os.Stderr, os.Stderr
		if err := rp.cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	stop := func(rp *replica, sig syscall.Signal) {
		if rp.cmd != nil && rp.cmd.ProcessState == nil {
			_ = rp.cmd.Process.Signal(sig)
			_ = rp.cmd.Wait()
		}
	}
	reps := []*replica{{name: "r0"}, {name: "r1"}, {name: "r2"}}
	for _, rp := range reps {
		start(rp)
		t.Cleanup(func() { stop(rp, syscall.SIGKILL) })
	}
	waitFor(t, "the twelve first scores", func() bool { return len(r.alerts()) >= n })

	// Runs start failing: health 94.3, below the border, held healthy.
	r.insert(func(b *store.Batch) {
		for _, name := range names {
			runs(b, name, "FAIL", 4)
		}
	})
	deadline := time.Now().Add(45 * time.Second)
	for {
		var c uint64
		_ = r.conn.QueryRow(t.Context(), "SELECT count() FROM "+r.sc.Database+".product_scores_latest WHERE health < 95 AND health_band = 'healthy'").Scan(&c)
		if c == n {
			break
		}
		if time.Now().After(deadline) {
			// What each product shows and what was published, to tell a
			// slow group from a wrong band.
			rows, err := r.conn.Query(t.Context(), "SELECT product_urn, toString(health), health_band, cause FROM "+r.sc.Database+".product_scores_latest ORDER BY product_urn")
			if err == nil {
				for rows.Next() {
					var p, h, b, cause string
					_ = rows.Scan(&p, &h, &b, &cause)
					t.Logf("now: %s health %s %s (%s)", p, h, b, cause)
				}
				rows.Close()
			}
			for _, ev := range r.alerts() {
				t.Logf("published: %s %s→%s by %s: %s", ev.ProductURN, ev.OldHealthBand, ev.NewHealthBand, ev.EventID, ev.Cause)
			}
			t.Fatalf("timed out waiting for the scores to move below the border (%d of %d)", c, n)
		}
		time.Sleep(100 * time.Millisecond)
	}

	rng := rand.New(rand.NewPCG(8, 8))
	for k := range 7 {
		rp := reps[rng.IntN(len(reps))]
		sig := syscall.SIGKILL
		if k == 3 {
			sig = syscall.SIGTERM
		}
		stop(rp, sig)
		t.Logf("handover %d: %s stopped with %v", k+1, rp.name, sig)
		time.Sleep(time.Duration(500+rng.IntN(2000)) * time.Millisecond)
		start(rp)
		time.Sleep(time.Duration(2000+rng.IntN(3000)) * time.Millisecond)
	}
	// Let the last dead member expire and the shares settle, with full passes.
	time.Sleep(12 * time.Second)

	evs := r.alerts()
	ids := map[string]int{}
	for _, ev := range evs {
		ids[ev.EventID]++
		if !strings.HasPrefix(ev.Cause, "first score") {
			t.Errorf("alert without a change: %s health %s→%s trust %s→%s, cause %q", ev.ProductURN,
				ev.OldHealthBand, ev.NewHealthBand, ev.OldTrustBand, ev.NewTrustBand, ev.Cause)
		}
	}
	for id, c := range ids {
		if c != 1 {
			t.Errorf("event id %s published %d times", id, c)
		}
	}
	if len(evs) != n {
		t.Errorf("%d alerts on mesh.scores, want the %d first scores only", len(evs), n)
	}
	t.Logf("%d alerts after 7 handovers (6 kill -9, 1 SIGTERM), each event id once", len(evs))
}
