package model

import (
	"container/heap"
	"fmt"
)

// Trust flows down lineage: a product cannot be trusted more than margin
// points above anything it is built from. Unrolled over the graph, a
// product's trust is the smallest, over itself and every product upstream of
// it at any distance, of that product's own trust plus margin × hops:
//
//	trust(p) = min over u in {p} ∪ upstream*(p) of own(u) + margin · hops(u, p)
//
// a shortest-path problem with one source per product, solved exactly
// (Dijkstra), cycles included, and incrementally for what changed. The u
// that attains the minimum is the root cause: where the problem is, and how
// many hops up.

// Upstream is the product graph as trust propagation needs it.
type Upstream interface {
	DirectUpstream(product string) []string
	DirectDownstream(product string) []string
}

// Own is a product's own trust, before lineage; Known false means no signals.
type Own struct {
	Trust float64
	Known bool
}

// Flow is a product's trust after lineage.
type Flow struct {
	// Trust is the lineage-capped trust; with Known false nothing upstream
	// or own is known and Trust means nothing.
	Trust float64
	Known bool
	// Cause is the product whose own trust sets this one (itself when its
	// own trust is the limit); Hops is how far up it is.
	Cause string
	Hops  int
}

// Capped reports whether the trust is set by an upstream product.
func (f Flow) Capped(product string) bool { return f.Known && f.Cause != product }

// Propagate computes the flow of the given products from their own trust
// and, for products outside the set, the flows already known (the boundary).
// With every product in the set it is the full computation; with a changed
// product and everything downstream of it, the incremental one.
func Propagate(g Upstream, set []string, own func(string) Own, boundary func(string) (Flow, bool), margin float64) map[string]Flow {
	in := make(map[string]bool, len(set))
	for _, p := range set {
		in[p] = true
	}
	out := make(map[string]Flow, len(set))
	pq := &flowQueue{}
	offer := func(p string, f Flow) {
		cur, ok := out[p]
		if ok && !better(f, cur) {
			return
		}
		out[p] = f
		heap.Push(pq, queued{p, f})
	}
	for _, p := range set {
		if o := own(p); o.Known {
			offer(p, Flow{Trust: o.Trust, Known: true, Cause: p})
		}
		for _, u := range g.DirectUpstream(p) {
			if in[u] {
				continue
			}
			if f, ok := boundary(u); ok && f.Known {
				offer(p, Flow{Trust: f.Trust + margin, Known: true, Cause: f.Cause, Hops: f.Hops + 1})
			}
		}
	}
	done := map[string]bool{}
	for pq.Len() > 0 {
		q := heap.Pop(pq).(queued)
		if done[q.product] || out[q.product] != q.flow {
			continue
		}
		done[q.product] = true
		for _, d := range g.DirectDownstream(q.product) {
			if in[d] && !done[d] {
				offer(d, Flow{Trust: q.flow.Trust + margin, Known: true, Cause: q.flow.Cause, Hops: q.flow.Hops + 1})
			}
		}
	}
	for _, p := range set {
		if _, ok := out[p]; !ok {
			out[p] = Flow{Cause: p}
		}
	}
	return out
}

// better orders candidate flows: lower trust, then the product's own limit
// before an upstream one, then fewer hops, then the smaller cause, so that
// every replica names the same root cause.
func better(a, b Flow) bool {
	if a.Trust != b.Trust {
		return a.Trust < b.Trust
	}
	if a.Hops != b.Hops {
		return a.Hops < b.Hops
	}
	return a.Cause < b.Cause
}

type queued struct {
	product string
	flow    Flow
}

type flowQueue []queued

func (q flowQueue) Len() int           { return len(q) }
func (q flowQueue) Less(i, j int) bool { return better(q[i].flow, q[j].flow) }
func (q flowQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *flowQueue) Push(x any)        { *q = append(*q, x.(queued)) }
func (q *flowQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// UpstreamReason explains a trust set by an upstream product.
func UpstreamReason(f Flow, causeTrust float64, margin float64) string {
	return fmt.Sprintf("upstream %s (%s up) has own trust %.0f: trust capped at %.0f", short(f.Cause), plural(f.Hops, "hop", "hops"), causeTrust, f.Trust)
}
