package ingest

import (
	"testing"

	"github.com/meshpulse/meshpulse/internal/store"
)

func TestOwners(t *testing.T) {
	const ds = "urn:mesh:dataset:wh:orders"
	claim := func(domain string, at int64, id string) store.Claim {
		return store.Claim{Dataset: ds, Domain: domain, Product: "urn:mesh:product:" + domain + ":p", AtMs: at, EventID: id}
	}
	tests := []struct {
		name string
		run  func(o *Owners)
		want string
	}{
		{"nobody", func(*Owners) {}, ""},
		{"a pending claim counts tentatively", func(o *Owners) { o.Propose(1, []store.Claim{claim("sales", 10, "a")}) }, "sales"},
		{"a dropped batch takes its claim back", func(o *Owners) {
			o.Propose(1, []store.Claim{claim("sales", 10, "a")})
			o.Drop(1)
		}, ""},
		{"a stored claim stays", func(o *Owners) {
			o.Propose(1, []store.Claim{claim("sales", 10, "a")})
			o.Stored(1)
			o.Drop(1)
		}, "sales"},
		{"the earliest stored claim wins whatever the order", func(o *Owners) {
			o.Propose(1, []store.Claim{claim("finance", 20, "b")})
			o.Stored(1)
			o.Load(map[string]store.Claim{ds: claim("sales", 10, "a")})
		}, "sales"},
		{"equal times: the smaller event id wins", func(o *Owners) {
			o.Load(map[string]store.Claim{ds: claim("finance", 10, "b")})
			o.Propose(2, []store.Claim{claim("sales", 10, "a")})
			o.Stored(2)
		}, "sales"},
		{"a stored owner outranks a tentative one", func(o *Owners) {
			o.Load(map[string]store.Claim{ds: claim("finance", 30, "b")})
			o.Propose(2, []store.Claim{claim("sales", 10, "a")})
		}, "finance"},
		{"a reload keeps the earliest", func(o *Owners) {
			o.Load(map[string]store.Claim{ds: claim("sales", 10, "a")})
			o.Load(map[string]store.Claim{ds: claim("finance", 20, "b")})
		}, "sales"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := NewOwners()
			tt.run(o)
			if got := o.Owner(ds); got != tt.want {
				t.Fatalf("Owner = %q, want %q", got, tt.want)
			}
		})
	}
}
