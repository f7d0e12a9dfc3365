package lineage

import (
	"reflect"
	"testing"
)

// mesh: a -> b -> c, a -> d, and a cycle x <-> y, plus c -> x.
func testGraph() *Graph {
	g := New()
	for _, p := range []string{"a", "b", "c", "d", "x", "y"} {
		g.AddProduct("p:"+p, []string{"ds:" + p}, nil)
	}
	g.AddDatasetEdge("ds:a", "ds:b")
	g.AddDatasetEdge("ds:b", "ds:c")
	g.AddProduct("p:d", nil, []string{"ds:a"}) // declared input, no run yet
	g.AddDatasetEdge("ds:x", "ds:y")
	g.AddDatasetEdge("ds:y", "ds:x")
	g.AddDatasetEdge("ds:c", "ds:x")
	g.AddDatasetEdge("ds:external", "ds:a") // source outside the mesh
	return g
}

func TestTraversal(t *testing.T) {
	g := testGraph()
	tests := []struct {
		name string
		got  []Node
		want []Node
	}{
		{"upstream of c", g.Upstream("p:c", -1), []Node{{"p:b", 1}, {"p:a", 2}}},
		{"upstream of c depth 1", g.Upstream("p:c", 1), []Node{{"p:b", 1}}},
		{"downstream of a", g.Downstream("p:a", -1), []Node{{"p:b", 1}, {"p:d", 1}, {"p:c", 2}, {"p:x", 3}, {"p:y", 4}}},
		{"impact of b", g.Impact("p:b"), []Node{{"p:c", 1}, {"p:x", 2}, {"p:y", 3}}},
		{"cycle terminates", g.Downstream("p:x", -1), []Node{{"p:y", 1}}},
		{"cycle upstream", g.Upstream("p:x", -1), []Node{{"p:c", 1}, {"p:y", 1}, {"p:b", 2}, {"p:a", 3}}},
		{"dataset upstream", g.DatasetUpstream("ds:c", -1), []Node{{"ds:b", 1}, {"ds:a", 2}, {"ds:external", 3}}},
		{"dataset downstream depth 2", g.DatasetDownstream("ds:a", 2), []Node{{"ds:b", 1}, {"ds:c", 2}}},
		{"unknown product", g.Upstream("p:none", -1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Fatalf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestTopoOrder(t *testing.T) {
	ordered, cyclic := testGraph().TopoOrder()
	pos := map[string]int{}
	for i, p := range ordered {
		pos[p] = i
	}
	for _, e := range [][2]string{{"p:a", "p:b"}, {"p:b", "p:c"}, {"p:a", "p:d"}} {
		if pos[e[0]] >= pos[e[1]] {
			t.Errorf("%s not before %s in %v", e[0], e[1], ordered)
		}
	}
	if !reflect.DeepEqual(cyclic, []string{"p:x", "p:y"}) {
		t.Errorf("cyclic = %v", cyclic)
	}
}
