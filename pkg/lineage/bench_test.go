package lineage

import (
	"fmt"
	"testing"
)

// BenchmarkLoad100kEdges builds a graph of 50,000 products in six layers
// with 100,000 dataset edges between them, as LoadClickHouse would, and
// derives the product edges. Run: go test ./pkg/lineage -bench Load -benchmem
func BenchmarkLoad100kEdges(b *testing.B) {
	const products, edges = 50_000, 100_000
	type edge struct{ in, out string }
	es := make([]edge, edges)
	for i := range es {
		out := i % products
		layer := out * 6 / products
		in := (out*7919 + i) % max(1, products*layer/6)
		es[i] = edge{fmt.Sprintf("ds:%d", in), fmt.Sprintf("ds:%d", out)}
	}
	b.ReportAllocs()
	for b.Loop() {
		g := New()
		for p := range products {
			g.AddProduct(fmt.Sprintf("p:%d", p), []string{fmt.Sprintf("ds:%d", p)}, nil)
		}
		for _, e := range es {
			g.AddDatasetEdge(e.in, e.out)
		}
		g.Build()
	}
}

// BenchmarkImpact walks everything downstream of a first-layer product.
func BenchmarkImpact(b *testing.B) {
	g := New()
	const products = 50_000
	for p := range products {
		g.AddProduct(fmt.Sprintf("p:%d", p), []string{fmt.Sprintf("ds:%d", p)}, nil)
	}
	for i := range 100_000 {
		out := i % products
		layer := out * 6 / products
		in := (out*7919 + i) % max(1, products*layer/6)
		g.AddDatasetEdge(fmt.Sprintf("ds:%d", in), fmt.Sprintf("ds:%d", out))
	}
	g.Build()
	b.ResetTimer()
	for b.Loop() {
		_ = g.Impact("p:0")
	}
}
