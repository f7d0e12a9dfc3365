package ingest

import (
	"testing"

	"github.com/meshpulse/meshpulse/pkg/events"
)

type fakeOwners map[string]string

func (f fakeOwners) Owner(ds string) string { return f[ds] }

func TestAuthorise(t *testing.T) {
	const (
		orders  = "urn:mesh:dataset:wh:sales.orders"
		ledger  = "urn:mesh:dataset:wh:finance.ledger"
		unowned = "urn:mesh:dataset:wh:scratch.tmp"
	)
	owners := fakeOwners{orders: "sales", ledger: "finance"}
	env := func(emitter string) events.Envelope { return events.Envelope{Emitter: emitter} }
	meta := func(emitter, domain string, outs ...string) *events.ProductMetadata {
		m := &events.ProductMetadata{Envelope: env(emitter), ProductURN: events.ProductURN(domain, "p"), Domain: domain}
		for _, o := range outs {
			m.Outputs = append(m.Outputs, events.OutputDataset{DatasetURN: o})
		}
		return m
	}
	run := func(emitter, ns string, outs ...string) *events.LineageRun {
		return &events.LineageRun{Envelope: env(emitter), JobURN: events.JobURN(ns, "j"), Outputs: outs}
	}
	quality := func(emitter, ds string) *events.QualityResult {
		return &events.QualityResult{Envelope: env(emitter), DatasetURN: ds}
	}
	usage := func(emitter, ds, consumerDomain string) *events.UsageEvent {
		return &events.UsageEvent{Envelope: env(emitter), DatasetURN: ds, Consumer: events.Consumer{User: "u", Domain: consumerDomain}}
	}
	tests := []struct {
		name      string
		topic     string // emitter of the topic
		ev        events.Event
		wantOwner string
		reason    string // "" when accepted
	}{
		{"metadata own domain", "sales", meta("sales", "sales", orders), "", ""},
		{"metadata for another domain", "sales", meta("sales", "finance"), "", ReasonOwnership},
		{"metadata claims foreign dataset", "sales", meta("sales", "sales", ledger), "", ReasonOwnership},
		{"metadata emitter mismatch", "sales", meta("finance", "finance"), "", ReasonEmitterMismatch},
		{"lineage own namespace", "sales", run("sales", "sales", orders), "", ""},
		{"lineage from platform", "platform", run("platform", "finance", ledger), "", ""},
		{"lineage other namespace", "sales", run("sales", "finance"), "", ReasonOwnership},
		{"lineage writes foreign dataset", "sales", run("sales", "sales", ledger), "", ReasonOwnership},
		{"quality from owner", "sales", quality("sales", orders), "sales", ""},
		{"quality from platform", "platform", quality("platform", orders), "sales", ""},
		{"quality from other domain", "finance", quality("finance", orders), "", ReasonOwnership},
		{"quality on unowned dataset", "finance", quality("finance", unowned), "", ""},
		{"usage from owner", "sales", usage("sales", orders, "marketing"), "sales", ""},
		{"usage from consumer domain", "marketing", usage("marketing", orders, "marketing"), "sales", ""},
		{"usage from platform", "platform", usage("platform", orders, ""), "sales", ""},
		{"usage for someone else's consumer", "finance", usage("finance", orders, "marketing"), "", ReasonOwnership},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			owner, ref := authorise(tt.topic, tt.ev, owners)
			switch {
			case tt.reason == "" && ref != nil:
				t.Fatalf("refused: %v", ref)
			case tt.reason != "" && (ref == nil || ref.reason != tt.reason):
				t.Fatalf("refusal = %v, want reason %s", ref, tt.reason)
			case tt.reason == "" && owner != tt.wantOwner:
				t.Fatalf("owner = %q, want %q", owner, tt.wantOwner)
			}
		})
	}
}
