package catalog

import (
	"fmt"
	"os"
	"sort"
	"testing"
	"time"
)

// Throwaway: MESHPULSE_SEARCH_HARNESS=1 go test ./internal/catalog -run TestZZSearchHarness -v
func TestZZSearchHarness(t *testing.T) {
	if os.Getenv("MESHPULSE_SEARCH_HARNESS") == "" {
		t.Skip()
	}
	const n, fields = 100000, 10
	words := []string{"orders", "customers", "revenue", "shipments", "ledger", "payments", "invoices", "sessions", "campaigns", "carriers"}
	products := map[string]productInfo{}
	datasets := map[string]datasetInfo{}
	for i := range n {
		dom := fmt.Sprintf("domain%d", i%20)
		p := fmt.Sprintf("urn:mesh:product:%s:product_%d", dom, i)
		ds := fmt.Sprintf("urn:mesh:dataset:warehouse:%s.product_%d", dom, i)
		w := words[i%10]
		products[p] = productInfo{URN: p, Domain: dom, Name: fmt.Sprintf("product_%d", i), Description: fmt.Sprintf("generated product about %s number %d", w, i),
			Tags: []string{w}, Owners: []string{"team:owners"}, Outputs: []string{ds}}
		var fs []fieldInfo
		for k := range fields {
			fs = append(fs, fieldInfo{Name: fmt.Sprintf("%s_%d", words[k%10], k), Type: "string", Description: fmt.Sprintf("the %dth field", k)})
		}
		datasets[ds] = datasetInfo{URN: ds, Product: p, Domain: dom, Description: "generated dataset", Fields: fs}
	}
	s, err := newSearchIndex()
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	start := time.Now()
	if _, err := s.update(products, datasets, map[string]int{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("indexed in %s", time.Since(start))
	mesh := newMeshState()
	qs := []string{"orders", "ordrs", "customer", "custmer", "revenue", "email", "shipment", "ledger", "payments", "invoice", "prod", "domain7", "orders cus", "prod led", "domain7 rev"}
	for _, q := range qs {
		var ds []time.Duration
		var nh int
		for range 7 {
			st := time.Now()
			h, err := s.query(q, 20, mesh)
			if err != nil {
				t.Fatal(err)
			}
			ds = append(ds, time.Since(st))
			nh = len(h)
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		t.Logf("%-12q median %6.1f ms  max %6.1f ms  hits %d", q, float64(ds[3].Microseconds())/1000, float64(ds[6].Microseconds())/1000, nh)
	}
}
