package catalog

import (
	"fmt"
	"testing"
)

// TestSearchFindsWhatPeopleType: a small mesh indexed, and what a user
// types, with what must come first (or nothing).
func TestSearchFindsWhatPeopleType(t *testing.T) {
	products := map[string]productInfo{}
	datasets := map[string]datasetInfo{}
	add := func(domain, name, description string, tags []string, fields ...string) {
		urn := "urn:mesh:product:" + domain + ":" + name
		ds := "urn:mesh:dataset:warehouse:" + domain + "." + name
		products[urn] = productInfo{URN: urn, Domain: domain, Name: name, Description: description, Tags: tags, Owners: []string{"team:" + domain}, Outputs: []string{ds}}
		var fs []fieldInfo
		for _, f := range fields {
			fs = append(fs, fieldInfo{Name: f, Type: "string"})
		}
		datasets[ds] = datasetInfo{URN: ds, Product: urn, Domain: domain, Description: "table of " + name, Fields: fs}
	}
	add("sales", "orders", "every order placed", []string{"gold"}, "order_id", "customer_id", "amount")
	add("sales", "orders_daily", "orders per day", nil, "day", "orders")
	add("finance", "ledger", "double-entry ledger", []string{"sox"}, "account", "amount")
	add("marketing", "campaign_attribution", "which campaign brought which customer", nil, "campaign_id", "customer_email")
	add("domain7", "stock", "warehouse stock", nil, "sku")
	add("domain1", "stock", "warehouse stock", nil, "sku")

	// One shard, and several: a document's shard must not change what is
	// found first.
	for _, shards := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d shards", shards), func(t *testing.T) {
			s, err := newSearchIndex(shards)
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			if _, err := s.update(products, datasets, map[string]int{}); err != nil {
				t.Fatal(err)
			}
			searchFirst(t, s)
		})
	}
}

// searchFirst checks what comes first for what a user types.
func searchFirst(t *testing.T, s *searchIndex) {
	for _, c := range []struct {
		typed string
		first string // "" for no result
	}{
		{"orders", "urn:mesh:product:sales:orders"},                                     // exact name before names containing it
		{"ordrs", "urn:mesh:product:sales:orders"},                                      // one typo
		{"ord", "urn:mesh:product:sales:orders"},                                        // prefix of the word being typed
		{"orders daily", "urn:mesh:product:sales:orders_daily"},                         // the words of a name
		{"ledgr", "urn:mesh:product:finance:ledger"},                                    // typo
		{"campaign attr", "urn:mesh:product:marketing:campaign_attribution"},            // earlier word whole, last a prefix
		{"customer_email", "urn:mesh:dataset:warehouse:marketing.campaign_attribution"}, // a field name
		{"sox", "urn:mesh:product:finance:ledger"},                                      // a tag
		{"domain7 stock", "urn:mesh:dataset:warehouse:domain7.stock"},                   // identifiers with digits are exact (the dataset is named domain7.stock)...
		{"domain8 stock", ""},                                                           // ...not a typo of domain7
		{"zzzz", ""},
	} {
		hits, err := s.query(c.typed, 10, newMeshState())
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if len(hits) > 0 {
			got = hits[0].URN
		}
		if got != c.first {
			t.Errorf("%q: first %q, want %q (%d hits)", c.typed, got, c.first, len(hits))
		}
	}
}
