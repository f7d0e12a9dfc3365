package lineage

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// LoadClickHouse builds the graph from meshpulse's tables in database db:
// the products' declared outputs and inputs and the current dataset edges.
// A dataset belongs to its owner (dataset_owners: the earliest claim), so a
// product that declared a dataset another product owns draws no edge from
// it, the same rule the scorer uses.
func LoadClickHouse(ctx context.Context, conn driver.Conn, db string) (*Graph, error) {
	owners := map[string]string{}
	if err := scan(ctx, conn, "SELECT dataset_urn, product_urn FROM "+db+".dataset_owners", func(r driver.Rows) error {
		var ds, p string
		if err := r.Scan(&ds, &p); err != nil {
			return err
		}
		owners[ds] = p
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load dataset owners: %w", err)
	}
	g := New()
	if err := scan(ctx, conn, "SELECT product_urn, output_datasets, input_datasets FROM "+db+".products FINAL", func(r driver.Rows) error {
		var p string
		var outs, ins []string
		if err := r.Scan(&p, &outs, &ins); err != nil {
			return err
		}
		owned := outs[:0]
		for _, o := range outs {
			if owner, ok := owners[o]; !ok || owner == p {
				owned = append(owned, o)
			}
		}
		g.AddProduct(p, owned, ins)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load products: %w", err)
	}
	if err := scan(ctx, conn, "SELECT input_dataset, output_dataset FROM "+db+".lineage_edges FINAL", func(r driver.Rows) error {
		var in, out string
		if err := r.Scan(&in, &out); err != nil {
			return err
		}
		g.AddDatasetEdge(in, out)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load lineage edges: %w", err)
	}
	g.Build()
	return g, nil
}

func scan(ctx context.Context, conn driver.Conn, query string, row func(driver.Rows) error) error {
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
