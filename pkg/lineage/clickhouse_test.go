package lineage_test

import (
	"context"
	"testing"
	"time"

	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/pkg/events"
	"github.com/meshpulse/meshpulse/pkg/lineage"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// A dataset declared by two products belongs to the earlier claim: the
// later declaration draws no edge, as in the scorer.
func TestLoadClickHouseFollowsOwnership(t *testing.T) {
	sc, conn := testenv.ClickHouse(t)
	ds := events.DatasetURN("wh", "orders")
	derived := events.DatasetURN("wh", "revenue")
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	declare := func(domain, name string, at time.Time, id string, outs []string, ins ...string) *events.ProductMetadata {
		ev := &events.ProductMetadata{
			Envelope:   events.Envelope{EventID: id, EventTime: at, Emitter: domain},
			ProductURN: events.ProductURN(domain, name), Domain: domain, Name: name, Inputs: ins,
		}
		for _, o := range outs {
			ev.Outputs = append(ev.Outputs, events.OutputDataset{DatasetURN: o})
		}
		return ev
	}
	b := &store.Batch{}
	b.AddMetadata(declare("sales", "orders", t0, "e1", []string{ds}))
	b.AddMetadata(declare("fraud", "orders-copy", t0.Add(time.Minute), "e2", []string{ds}))
	b.AddMetadata(declare("finance", "revenue", t0, "e3", []string{derived}, ds))
	if err := store.NewWriter(conn, sc.Database).Insert(context.Background(), []*store.Batch{b}); err != nil {
		t.Fatal(err)
	}
	g, err := lineage.LoadClickHouse(context.Background(), conn, sc.Database)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what, got, want string
	}{
		{"owner of orders", g.Owner(ds), events.ProductURN("sales", "orders")},
		{"owner of revenue", g.Owner(derived), events.ProductURN("finance", "revenue")},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if got := g.Outputs(events.ProductURN("fraud", "orders-copy")); len(got) != 0 {
		t.Errorf("the losing claim kept outputs %v", got)
	}
	up := g.DirectUpstream(events.ProductURN("finance", "revenue"))
	if len(up) != 1 || up[0] != events.ProductURN("sales", "orders") {
		t.Errorf("revenue's upstream = %v, want only sales orders", up)
	}
}
