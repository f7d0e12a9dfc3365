package scorer

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/queries.golden")

// TestQueriesSnapshot pins the SQL the scorer sends, as rendered for a
// database named "db": a change to a query shows up in review as a diff of
// testdata/queries.golden (go test ./internal/scorer -run Snapshot -update).
func TestQueriesSnapshot(t *testing.T) {
	var b strings.Builder
	for _, c := range Queries("db") {
		b.WriteString("-- " + c.Name + "\n" + c.SQL + ";\n\n")
	}
	b.WriteString("-- history insert\n" + strings.ReplaceAll(insertHistory, "%s", "db") + ";\n\n")
	got := b.String()
	const golden = "testdata/queries.golden"
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("scorer SQL differs from %s; review and run with -update:\n%s", golden, got)
	}
	if strings.Contains(got, "{") {
		t.Fatalf("unreplaced placeholder in:\n%s", got)
	}
}
