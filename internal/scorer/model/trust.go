package model

import (
	"container/heap"
	"fmt"
	"sort"
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

// Lineage is the product graph indexed for propagation: products are
// numbered once per graph, edges are slices of numbers.
type Lineage struct {
	Names    []string
	index    map[string]int32
	up, down [][]int32
}

// NewLineage indexes products and their direct upstream products.
func NewLineage(products []string, upstream func(string) []string) *Lineage {
	l := &Lineage{Names: append([]string(nil), products...), index: make(map[string]int32, len(products))}
	sort.Strings(l.Names)
	for i, p := range l.Names {
		l.index[p] = int32(i)
	}
	l.up, l.down = make([][]int32, len(l.Names)), make([][]int32, len(l.Names))
	for i, p := range l.Names {
		for _, u := range upstream(p) {
			if j, ok := l.index[u]; ok && j != int32(i) {
				l.up[i] = append(l.up[i], j)
				l.down[j] = append(l.down[j], int32(i))
			}
		}
	}
	return l
}

// Index returns a product's number.
func (l *Lineage) Index(p string) (int32, bool) {
	i, ok := l.index[p]
	return i, ok
}

// Len is the number of products.
func (l *Lineage) Len() int { return len(l.Names) }

// Upstream returns the direct upstream products of a product.
func (l *Lineage) Upstream(p string) []string {
	i, ok := l.index[p]
	if !ok {
		return nil
	}
	out := make([]string, len(l.up[i]))
	for k, j := range l.up[i] {
		out[k] = l.Names[j]
	}
	return out
}

// Downstream returns a product and everything downstream of it (numbers).
func (l *Lineage) Downstream(roots []int32) []int32 {
	seen := make([]bool, len(l.Names))
	var out []int32
	stack := append([]int32(nil), roots...)
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
		stack = append(stack, l.down[n]...)
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}

// Parents lists the direct upstream products of product i, by index.
func (l *Lineage) Parents(i int32) []int32 { return l.up[i] }

// Propagate computes the flows of the products in set (nil: all of them)
// into flows (indexed like the products), from their own trust and, for
// products outside the set, the flows already there (the boundary). With
// every product in the set it is the full computation; with changed
// products and everything downstream of them, the incremental one.
func (l *Lineage) Propagate(set []int32, own func(int32) Own, flows []Flow, margin float64) {
	if set == nil {
		set = make([]int32, l.Len())
		for i := range set {
			set[i] = int32(i)
		}
	}
	// in: part of the computation; offered: has a candidate; done: final.
	in, offered, done := make([]bool, l.Len()), make([]bool, l.Len()), make([]bool, l.Len())
	for _, n := range set {
		in[n] = true
		flows[n] = Flow{Cause: l.Names[n]}
	}
	pq := &flowQueue{}
	offer := func(n int32, f Flow) {
		if offered[n] && !better(f, flows[n]) {
			return
		}
		offered[n] = true
		flows[n] = f
		heap.Push(pq, queued{n, f})
	}
	for _, n := range set {
		if o := own(n); o.Known {
			offer(n, Flow{Trust: o.Trust, Known: true, Cause: l.Names[n]})
		}
		for _, u := range l.up[n] {
			if !in[u] && flows[u].Known {
				f := flows[u]
				offer(n, Flow{Trust: f.Trust + margin, Known: true, Cause: f.Cause, Hops: f.Hops + 1})
			}
		}
	}
	for pq.Len() > 0 {
		q := heap.Pop(pq).(queued)
		if done[q.node] || flows[q.node] != q.flow {
			continue
		}
		done[q.node] = true
		for _, d := range l.down[q.node] {
			if in[d] && !done[d] {
				offer(d, Flow{Trust: q.flow.Trust + margin, Known: true, Cause: q.flow.Cause, Hops: q.flow.Hops + 1})
			}
		}
	}
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
	node int32
	flow Flow
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
func UpstreamReason(f Flow, causeTrust float64) string {
	return fmt.Sprintf("upstream %s (%s up) has own trust %.0f: trust capped at %.0f", short(f.Cause), plural(f.Hops, "hop", "hops"), causeTrust, f.Trust)
}
