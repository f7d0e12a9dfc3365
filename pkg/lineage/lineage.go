// Package lineage is the mesh's lineage graph at two levels: datasets (from
// the job runs' input → output edges) and products (a product depends on the
// products that own the datasets its outputs are built from, by lineage or
// by declaration). It offers upstream and downstream traversal with depth
// limits, safe on cycles, and impact analysis. Other programs may import it;
// LoadClickHouse builds a graph from meshpulse's tables.
//
// A Graph is built once and then read; it is safe for concurrent reads.
package lineage

import (
	"sort"
)

// Node is a product or dataset reached by a traversal, with its distance.
type Node struct {
	URN   string
	Depth int
}

// Graph holds dataset and product edges.
type Graph struct {
	dsUp, dsDown     map[string][]string // dataset -> datasets
	owner            map[string]string   // dataset -> product
	declaredInputs   map[string][]string // product -> input datasets
	outputs          map[string][]string // product -> output datasets
	prodUp, prodDown map[string][]string // product -> products
	built            bool
}

// New returns an empty graph.
func New() *Graph {
	return &Graph{
		dsUp: map[string][]string{}, dsDown: map[string][]string{}, owner: map[string]string{},
		declaredInputs: map[string][]string{}, outputs: map[string][]string{},
	}
}

// AddDatasetEdge records that output is built from input.
func (g *Graph) AddDatasetEdge(input, output string) {
	if input == output {
		return
	}
	g.dsUp[output] = append(g.dsUp[output], input)
	g.dsDown[input] = append(g.dsDown[input], output)
	g.built = false
}

// AddProduct records a product's declared outputs and inputs.
func (g *Graph) AddProduct(product string, outputs, inputs []string) {
	g.outputs[product] = append(g.outputs[product], outputs...)
	g.declaredInputs[product] = append(g.declaredInputs[product], inputs...)
	for _, o := range outputs {
		g.owner[o] = product
	}
	g.built = false
}

// Build derives the product edges; traversals call it when needed.
func (g *Graph) Build() {
	if g.built {
		return
	}
	up := map[string]map[string]bool{}
	link := func(from, to string) {
		if from == "" || from == to {
			return
		}
		if up[to] == nil {
			up[to] = map[string]bool{}
		}
		up[to][from] = true
	}
	for p, outs := range g.outputs {
		for _, in := range g.declaredInputs[p] {
			link(g.owner[in], p)
		}
		for _, o := range outs {
			for _, in := range g.dsUp[o] {
				link(g.owner[in], p)
			}
		}
	}
	g.prodUp, g.prodDown = map[string][]string{}, map[string][]string{}
	for to, froms := range up {
		for from := range froms {
			g.prodUp[to] = append(g.prodUp[to], from)
			g.prodDown[from] = append(g.prodDown[from], to)
		}
	}
	for _, m := range []map[string][]string{g.prodUp, g.prodDown} {
		for k := range m {
			sort.Strings(m[k])
		}
	}
	g.built = true
}

// Products lists every product, sorted.
func (g *Graph) Products() []string {
	out := make([]string, 0, len(g.outputs))
	for p := range g.outputs {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Owner returns the product that declares dataset, or "".
func (g *Graph) Owner(dataset string) string { return g.owner[dataset] }

// Outputs returns a product's declared output datasets.
func (g *Graph) Outputs(product string) []string { return g.outputs[product] }

// DirectUpstream returns the products a product is built from.
func (g *Graph) DirectUpstream(product string) []string { g.Build(); return g.prodUp[product] }

// DirectDownstream returns the products built from a product.
func (g *Graph) DirectDownstream(product string) []string { g.Build(); return g.prodDown[product] }

// Upstream returns the products a product depends on, nearest first, up to
// maxDepth hops (maxDepth < 0: unlimited). Each product appears once, at its
// shortest distance; cycles end the walk.
func (g *Graph) Upstream(product string, maxDepth int) []Node {
	g.Build()
	return walk(product, maxDepth, g.prodUp)
}

// Downstream returns the products that depend on a product.
func (g *Graph) Downstream(product string, maxDepth int) []Node {
	g.Build()
	return walk(product, maxDepth, g.prodDown)
}

// Impact answers "which products are affected if product degrades": every
// product downstream of it, at any depth.
func (g *Graph) Impact(product string) []Node { return g.Downstream(product, -1) }

// DatasetUpstream walks dataset edges towards the sources.
func (g *Graph) DatasetUpstream(dataset string, maxDepth int) []Node {
	return walk(dataset, maxDepth, g.dsUp)
}

// DatasetDownstream walks dataset edges towards the consumers.
func (g *Graph) DatasetDownstream(dataset string, maxDepth int) []Node {
	return walk(dataset, maxDepth, g.dsDown)
}

// TopoOrder returns products with every product after its upstream ones;
// products on a cycle come after everything else that is ordered, in name
// order, so callers can iterate to a fixed point over them.
func (g *Graph) TopoOrder() (ordered []string, cyclic []string) {
	g.Build()
	indeg := map[string]int{}
	for _, p := range g.Products() {
		indeg[p] = 0
	}
	for to, froms := range g.prodUp {
		if _, ok := indeg[to]; ok {
			for _, f := range froms {
				if _, ok := indeg[f]; ok {
					indeg[to]++
				}
			}
		}
	}
	var queue []string
	for _, p := range g.Products() {
		if indeg[p] == 0 {
			queue = append(queue, p)
		}
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		ordered = append(ordered, p)
		for _, d := range g.prodDown[p] {
			if _, ok := indeg[d]; !ok {
				continue
			}
			indeg[d]--
			if indeg[d] == 0 {
				queue = append(queue, d)
			}
		}
	}
	for _, p := range g.Products() {
		if indeg[p] > 0 {
			cyclic = append(cyclic, p)
		}
	}
	return ordered, cyclic
}

func walk(start string, maxDepth int, next map[string][]string) []Node {
	seen := map[string]bool{start: true}
	var out []Node
	frontier := []string{start}
	for depth := 1; len(frontier) > 0 && (maxDepth < 0 || depth <= maxDepth); depth++ {
		var nextFrontier []string
		for _, n := range frontier {
			for _, m := range next[n] {
				if !seen[m] {
					seen[m] = true
					out = append(out, Node{URN: m, Depth: depth})
					nextFrontier = append(nextFrontier, m)
				}
			}
		}
		frontier = nextFrontier
	}
	return out
}
