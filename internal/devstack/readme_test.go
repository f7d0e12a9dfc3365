package devstack

import (
	"context"
	"testing"
	"time"

	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/internal/testmesh"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestReadmeQueriesOnDemoData plays the demo mesh through the real ingestor
// and scorer and runs every query of the README: each must return rows.
func TestReadmeQueriesOnDemoData(t *testing.T) {
	queries := testmesh.ReadmeQueries(t)
	if len(queries) < 12 {
		t.Fatalf("found %d README queries", len(queries))
	}
	sc, _ := testmesh.DemoData(t)
	ctx := context.Background()
	conn, err := store.OpenInDatabase(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(30 * time.Second)
	for _, q := range queries {
		for {
			n, err := testmesh.CountRows(ctx, conn, q)
			if err != nil {
				t.Fatalf("README query failed: %v\n%s", err, q)
			}
			if n > 0 {
				t.Logf("%d rows: %s", n, q)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("README query returned no rows on demo data:\n%s", q)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	line, err := Summary(ctx, conn, sc.Database)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(line)
}
