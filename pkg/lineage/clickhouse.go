package lineage

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// LoadClickHouse builds the graph from meshpulse's tables in database db:
// the current dataset edges and the products' declared outputs and inputs.
func LoadClickHouse(ctx context.Context, conn driver.Conn, db string) (*Graph, error) {
	g := New()
	rows, err := conn.Query(ctx, "SELECT product_urn, output_datasets, input_datasets FROM "+db+".products FINAL")
	if err != nil {
		return nil, fmt.Errorf("load products: %w", err)
	}
	for rows.Next() {
		var p string
		var outs, ins []string
		if err := rows.Scan(&p, &outs, &ins); err != nil {
			rows.Close()
			return nil, err
		}
		g.AddProduct(p, outs, ins)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = conn.Query(ctx, "SELECT input_dataset, output_dataset FROM "+db+".lineage_edges FINAL")
	if err != nil {
		return nil, fmt.Errorf("load lineage edges: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var in, out string
		if err := rows.Scan(&in, &out); err != nil {
			return nil, err
		}
		g.AddDatasetEdge(in, out)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	g.Build()
	return g, nil
}
