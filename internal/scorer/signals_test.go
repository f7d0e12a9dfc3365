package scorer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/meshpulse/meshpulse/internal/scorer/model"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// TestUsageFromDailyStatesEqualsTheLog: the adoption signal, read from the
// daily uniq states and the windows' edge days or from the log, equals
// distinct consumers counted exactly over the log, for windows of minutes,
// hours and days whose borders fall inside days, for all datasets and for
// some, after a batch is inserted twice (a replay); and the states are
// chosen when there are many reads per state.
func TestUsageFromDailyStatesEqualsTheLog(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx := context.Background()
	sc, conn := testenv.ClickHouse(t)
	w := store.NewWriter(conn, sc.Database)
	now := time.Date(2026, 11, 20, 15, 37, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(7, 8))
	datasets := []string{"urn:mesh:dataset:warehouse:sales.orders", "urn:mesh:dataset:warehouse:sales.returns", "urn:mesh:dataset:warehouse:finance.ledger"}
	b := &store.Batch{}
	for range 6000 {
		// reads over the last 20 days, a few of them in the future
		at := now.Add(-time.Duration(rng.Int64N(int64(20 * 24 * time.Hour)))).Add(time.Duration(rng.IntN(3)) * time.Hour)
		b.AddUsage(&events.UsageEvent{Envelope: events.Envelope{EventID: fmt.Sprint(rng.Uint64()), EventTime: at},
			DatasetURN: datasets[rng.IntN(len(datasets))], Consumer: events.Consumer{User: fmt.Sprint("user_", rng.IntN(400))}, AccessKind: "query"}, "")
	}
	for range 2 { // the second insert is a replay
		if err := w.Insert(ctx, []*store.Batch{b}); err != nil {
			t.Fatal(err)
		}
	}
	var states uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+sc.Database+".usage_consumers_daily").Scan(&states); err != nil || states == 0 {
		t.Fatalf("daily consumer states: %d, %v; the view did not fill them", states, err)
	}
	// 6,000 reads over 20 days, 3 datasets: about 33 reads per state.
	if daily, err := usageFromDaily(ctx, conn, sc.Database); err != nil || !daily {
		t.Errorf("with many reads per daily state: from the states %v (%v), want true", daily, err)
	}
	for _, window := range []time.Duration{10 * time.Minute, 90 * time.Minute, 24 * time.Hour, 36 * time.Hour, 7 * 24 * time.Hour} {
		for _, c := range []struct {
			filter []string
			daily  bool
		}{{nil, true}, {datasets[:2], true}, {nil, false}, {datasets[:2], false}} {
			t.Run(fmt.Sprintf("%s/%d datasets/daily %v", window, len(c.filter), c.daily), func(t *testing.T) {
				filter := c.filter
				pol := model.DefaultPolicy()
				pol.Windows.Adoption.Duration = window
				got := map[string][2]int{}
				qctx, err := wanted(ctx, filter)
				if err != nil {
					t.Fatal(err)
				}
				if err := loadUsage(qctx, conn, sc.Database, &pol, now, filter != nil, c.daily, got); err != nil {
					t.Fatal(err)
				}
				want := map[string][2]int{}
				rows, err := conn.Query(ctx, "SELECT dataset_urn, uniqExactIf(consumer_user, event_time >= toDateTime(?)), uniqExactIf(consumer_user, event_time < toDateTime(?)) FROM "+
					sc.Database+".usage_events WHERE event_time >= toDateTime(?) GROUP BY dataset_urn", now.Add(-window).Unix(), now.Add(-window).Unix(), now.Add(-2*window).Unix())
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var ds string
					var cur, prev uint64
					if err := rows.Scan(&ds, &cur, &prev); err != nil {
						t.Fatal(err)
					}
					if filter == nil || ds != datasets[2] {
						want[ds] = [2]int{int(cur), int(prev)}
					}
				}
				rows.Close()
				if len(want) == 0 {
					t.Fatal("no usage in the windows: the test data is wrong")
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("consumers (now, before) by dataset:\n got %v\nwant %v", got, want)
				}
			})
		}
	}
}
