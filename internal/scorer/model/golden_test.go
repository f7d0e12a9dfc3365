package model

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/golden_mesh.txt")

// TestGoldenMesh scores a small mesh that docs/scoring.md works through by
// hand: a change to the model shows up as a diff of testdata/golden_mesh.txt
// (go test ./internal/scorer/model -run Golden -update), and the document
// must follow.
func TestGoldenMesh(t *testing.T) {
	p := DefaultPolicy()
	ds := func(p string) string { return "urn:mesh:dataset:warehouse:" + p }
	check := func(dataset, name, status, severity string) CheckResult {
		return CheckResult{Dataset: ds(dataset), Check: name, Status: status, Severity: severity}
	}
	complete := fullMeta()
	fresh := now.Add(-10 * time.Minute)
	products := []Signals{
		{Product: "urn:mesh:product:sales:orders", Domain: "sales", Meta: complete, LastSuccess: fresh, RunsOK: 10, Consumers: 10, PrevConsumers: 10,
			Checks: []CheckResult{check("sales.orders", "not_null_id", "PASS", "high"), check("sales.orders", "unique_id", "PASS", "high"),
				check("sales.orders", "row_count", "FAIL", "high"), check("sales.orders", "amount_positive", "FAIL", "high")}},
		{Product: "urn:mesh:product:finance:ledger", Domain: "finance", Meta: complete, LastSuccess: fresh, RunsOK: 10, Consumers: 10, PrevConsumers: 10,
			Checks: []CheckResult{check("finance.ledger", "balanced", "PASS", "critical")}},
		{Product: "urn:mesh:product:logistics:shipments", Domain: "logistics", Meta: complete, LastSuccess: now.Add(-5 * time.Hour), RunsOK: 4, Consumers: 10, PrevConsumers: 10,
			Checks: []CheckResult{check("logistics.shipments", "row_count", "PASS", "medium")}},
		{Product: "urn:mesh:product:logistics:delivery_times", Domain: "logistics", Meta: complete, LastSuccess: fresh, RunsOK: 10, Consumers: 10, PrevConsumers: 10,
			Checks: []CheckResult{check("logistics.delivery_times", "row_count", "PASS", "medium")}},
		{Product: "urn:mesh:product:crm:customers", Domain: "crm", Meta: complete, LastSuccess: fresh, RunsOK: 2, RunsFailed: 8, Consumers: 3, PrevConsumers: 5,
			Checks: []CheckResult{check("crm.customers", "email_valid", "PASS", "low"), check("crm.customers", "country_known", "PASS", "low"),
				check("crm.customers", "not_null_id", "FAIL", "critical")}},
		{Product: "urn:mesh:product:marketing:attribution", Domain: "marketing", Meta: complete, LastSuccess: fresh, RunsOK: 10, Consumers: 10, PrevConsumers: 10,
			Checks: []CheckResult{check("marketing.attribution", "row_count", "PASS", "medium")}},
		{Product: "urn:mesh:product:marketing:segments", Domain: "marketing", Meta: complete, LastSuccess: fresh, RunsOK: 10, Consumers: 10, PrevConsumers: 10,
			Checks: []CheckResult{check("marketing.segments", "row_count", "PASS", "medium")}},
		{Product: "urn:mesh:product:finance:budget", Domain: "finance", Meta: Metadata{Tags: []string{"finance"}, Outputs: 1, Fields: 4, FieldsDescribed: 2},
			LastSuccess: fresh, RunsOK: 10, Consumers: 1, PrevConsumers: 0,
			Checks: []CheckResult{check("finance.budget", "row_count", "PASS", "medium")}},
		{Product: "urn:mesh:product:research:sandbox", Domain: "research", Meta: complete},
	}
	g := graph{
		"urn:mesh:product:sales:orders":          {"urn:mesh:product:finance:ledger", "urn:mesh:product:logistics:shipments"},
		"urn:mesh:product:logistics:shipments":   {"urn:mesh:product:logistics:delivery_times"},
		"urn:mesh:product:crm:customers":         {"urn:mesh:product:marketing:attribution"},
		"urn:mesh:product:marketing:attribution": {"urn:mesh:product:marketing:segments"},
	}
	partial := map[string]Partial{}
	var all []string
	for _, s := range products {
		partial[s.Product] = Evaluate(s, &p, now)
		all = append(all, s.Product)
	}
	sort.Strings(all)
	l := NewLineage(all, g.DirectUpstream)
	flows := make([]Flow, l.Len())
	l.Propagate(nil, func(i int32) Own {
		x := partial[l.Names[i]]
		return Own{Trust: x.OwnTrust, Known: x.HealthKnown}
	}, flows, p.UpstreamMargin)
	flow := map[string]Flow{}
	for i, f := range flows {
		flow[l.Names[i]] = f
	}
	var b strings.Builder
	for _, urn := range all {
		part, f := partial[urn], flow[urn]
		fmt.Fprintf(&b, "%s\n", Short(urn))
		if !part.HealthKnown {
			fmt.Fprintf(&b, "  health unknown, trust unknown\n")
		} else {
			hb := AtMost(Band(part.Health, "", p.Bands), part.HealthCap)
			trust := part.OwnTrust
			if f.Known && f.Trust < trust {
				trust = f.Trust
			}
			tb := AtMost(Band(trust, "", p.Bands), hb)
			fmt.Fprintf(&b, "  health %.1f %s, own trust %.1f, trust %.1f %s\n", part.Health, hb, part.OwnTrust, trust, tb)
			if f.Capped(urn) {
				fmt.Fprintf(&b, "  trust capped by %s, %d hop(s) up\n", Short(f.Cause), f.Hops)
			}
		}
		for _, c := range part.Components {
			if c.Weight > 0 {
				known := ""
				if !c.Known {
					known = " (unknown)"
				}
				fmt.Fprintf(&b, "  %-13s %5.1f × %.1f%s  %s\n", c.Name, c.Score, c.Weight, known, c.Detail)
			}
		}
		for _, r := range part.Reasons {
			fmt.Fprintf(&b, "  reason: %s\n", r)
		}
		for _, pr := range part.Problems {
			fmt.Fprintf(&b, "  problem: %s\n", pr)
		}
	}
	got := b.String()
	const golden = "testdata/golden_mesh.txt"
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("golden mesh differs (review, then -update):\n%s", got)
	}
}
