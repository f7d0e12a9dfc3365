package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// TestSelectCopiesTheRowsOfSpans: the rows between two marks are exactly
// the rows the records added in between, and a selection over parts equals
// a batch built from those records alone, table by table.
func TestSelectCopiesTheRowsOfSpans(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	usage := func(i int) *events.UsageEvent {
		return &events.UsageEvent{Envelope: events.Envelope{EventID: fmt.Sprintf("u%d", i), EventTime: now, Emitter: "platform"},
			DatasetURN: "urn:mesh:dataset:wh:sales.orders", Consumer: events.Consumer{User: fmt.Sprintf("user%d", i)}, AccessKind: "query", RowsRead: int64(i)}
	}
	quality := func(i int) *events.QualityResult {
		return &events.QualityResult{Envelope: events.Envelope{EventID: fmt.Sprintf("q%d", i), EventTime: now, Emitter: "sales"},
			DatasetURN: "urn:mesh:dataset:wh:sales.orders", CheckName: "c", CheckType: "validity", Status: "FAIL", Severity: "high"}
	}
	meta := &events.ProductMetadata{Envelope: events.Envelope{EventID: "m1", EventTime: now, Emitter: "sales"},
		ProductURN: "urn:mesh:product:sales:orders", Domain: "sales", Name: "orders",
		Outputs: []events.OutputDataset{{DatasetURN: "urn:mesh:dataset:wh:sales.orders", Fields: []events.DatasetField{{Name: "id", Type: "string"}}}}}

	run := &events.LineageRun{Envelope: events.Envelope{EventID: "r1", EventTime: now, Emitter: "sales"}, JobURN: "urn:mesh:job:sales:build",
		RunID: "run-1", State: "COMPLETE", Inputs: []string{"urn:mesh:dataset:wh:sales.raw"}, Outputs: []string{"urn:mesh:dataset:wh:sales.orders"}}
	a, b := &Batch{}, &Batch{}
	a.AddUsage(usage(0), "sales")
	from1 := a.Mark()
	a.AddUsage(usage(1), "sales")
	a.AddQuality(quality(1), "sales")
	a.AddLineage(run)
	to1 := a.Mark()
	a.AddUsage(usage(2), "sales")
	from2 := b.Mark()
	b.AddMetadata(meta)
	to2 := b.Mark()

	got := Select([]Span{{Part: a, From: from1, To: to1}, {Part: b, From: from2, To: to2}})
	want := &Batch{}
	want.AddUsage(usage(1), "sales")
	want.AddQuality(quality(1), "sales")
	want.AddLineage(run)
	want.AddMetadata(meta)

	if got.Len() != want.Len() {
		t.Fatalf("selected %d rows, want %d", got.Len(), want.Len())
	}
	wt := want.tables()
	for k, gt := range got.tables() {
		if gt.table() != wt[k].table() || gt.len() != wt[k].len() {
			t.Fatalf("table %d: %s with %d rows, want %s with %d", k, gt.table(), gt.len(), wt[k].table(), wt[k].len())
		}
		if g, w := fmt.Sprint(gt.data()), fmt.Sprint(wt[k].data()); g != w {
			t.Errorf("%s rows:\n got %s\nwant %s", gt.table(), g, w)
		}
	}
	// Mark reads the counts field by field: it must agree with tables().
	for k, tr := range want.tables() {
		if m := want.Mark(); int(m[k]) != tr.len() {
			t.Errorf("Mark()[%d] = %d, but %s has %d rows", k, m[k], tr.table(), tr.len())
		}
	}
	if n := len(Select(nil).tables()); n != numTables {
		t.Errorf("an empty selection has %d tables, want %d", n, numTables)
	}
}
