package openlineage

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testSpec = func() *Spec {
	s, err := LoadSpec()
	if err != nil {
		panic(err)
	}
	return s
}()

// The spec's own facet examples (spec/tests in the OpenLineage repository)
// pass the embedded schemas at the place their schema names.
func TestSpecExamplesValidate(t *testing.T) {
	files, _ := filepath.Glob("testdata/spec-tests/*.json")
	if len(files) < 40 {
		t.Fatalf("only %d spec examples", len(files))
	}
	places := map[string]place{}
	for _, f := range testSpec.Facets() {
		places[strings.TrimSuffix(f.File, ".json")] = place(f.Place)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			schemaName, _, _ := strings.Cut(filepath.Base(f), "-")
			pl, ok := places[schemaName]
			if !ok {
				t.Fatalf("no embedded schema %s", schemaName)
			}
			raw, _ := os.ReadFile(f)
			var doc map[string]any
			dec := json.NewDecoder(strings.NewReader(string(raw)))
			dec.UseNumber()
			if err := dec.Decode(&doc); err != nil {
				t.Fatal(err)
			}
			for name, v := range doc {
				sch := testSpec.facets[pl][name]
				if sch == nil {
					t.Fatalf("no schema for %s at %s", name, pl)
				}
				if err := sch.Validate(v); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
	}
}

func TestFacetSchemasKnowTheirPlace(t *testing.T) {
	want := map[string]string{
		"schema/DatasetFacet": "SchemaDatasetFacet.json", "columnLineage/DatasetFacet": "ColumnLineageDatasetFacet.json",
		"dataQualityAssertions/InputDatasetFacet": "DataQualityAssertionsDatasetFacet.json",
		"outputStatistics/OutputDatasetFacet":     "OutputStatisticsOutputDatasetFacet.json",
		"parent/RunFacet":                         "ParentRunFacet.json", "documentation/JobFacet": "DocumentationJobFacet.json",
		"documentation/DatasetFacet": "DocumentationDatasetFacet.json",
	}
	got := map[string]string{}
	for _, f := range testSpec.Facets() {
		got[f.Name+"/"+f.Place] = f.File
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: schema %q, want %q", k, got[k], v)
		}
	}
}

const producer = `"producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"`

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name    string
		body    string
		kind    string
		problem string // a substring of one reported problem; empty: valid
	}{
		{"run event", `{"eventType": "START", "eventTime": "2026-11-29T10:00:00.123Z", ` + producer + `, "run": {"runId": "3f5e3b1e-0c39-4d6c-9d43-8a3c0b1f2a11"}, "job": {"namespace": "dbt", "name": "orders"}}`, KindRun, ""},
		{"time without zone, nulls", `{"eventType": "COMPLETE", "eventTime": "2026-11-29T10:00:00.123456", ` + producer + `, "run": {"runId": "r", "facets": null}, "job": {"namespace": "dbt", "name": "orders", "facets": {"documentation": null}}, "inputs": null}`, KindRun, ""},
		{"no eventType", `{"eventTime": "2026-11-29 10:00:00", ` + producer + `, "run": {"runId": "r"}, "job": {"namespace": "n", "name": "j"}}`, KindRun, ""},
		{"custom facet", `{"eventType": "OTHER", "eventTime": "2026-11-29T10:00:00Z", ` + producer + `, "run": {"runId": "r", "facets": {"acme_cost": {"_producer": "p", "_schemaURL": "s", "dollars": 3}}}, "job": {"namespace": "n", "name": "j"}}`, KindRun, ""},
		{"dataset event", `{"eventTime": "2026-11-29T10:00:00Z", ` + producer + `, "dataset": {"namespace": "s3://lake", "name": "raw/orders"}}`, KindDataset, ""},
		{"job event", `{"eventTime": "2026-11-29T10:00:00Z", ` + producer + `, "job": {"namespace": "n", "name": "j"}, "outputs": [{"namespace": "s3://lake", "name": "x"}]}`, KindJob, ""},
		{"missing job", `{"eventType": "START", "eventTime": "2026-11-29T10:00:00Z", ` + producer + `, "run": {"runId": "r"}}`, KindRun, "missing property 'job'"},
		{"bad state", `{"eventType": "DONE", "eventTime": "2026-11-29T10:00:00Z", ` + producer + `, "run": {"runId": "r"}, "job": {"namespace": "n", "name": "j"}}`, KindRun, "at '/eventType'"},
		{"bad time", `{"eventType": "START", "eventTime": "yesterday", ` + producer + `, "run": {"runId": "r"}, "job": {"namespace": "n", "name": "j"}}`, KindRun, "cannot read \"yesterday\""},
		{"bad known facet", `{"eventType": "START", "eventTime": "2026-11-29T10:00:00Z", ` + producer + `, "run": {"runId": "r"}, "job": {"namespace": "n", "name": "j"}, "outputs": [{"namespace": "s3://l", "name": "x", "facets": {"schema": {"_producer": "p", "_schemaURL": "s", "fields": "id"}}}]}`, KindRun, "at '/outputs/0/facets/schema/fields'"},
		{"facet without base fields", `{"eventType": "START", "eventTime": "2026-11-29T10:00:00Z", ` + producer + `, "run": {"runId": "r", "facets": {"x": {}}}, "job": {"namespace": "n", "name": "j"}}`, KindRun, "missing properties '_producer', '_schemaURL'"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ev, err := testSpec.Parse([]byte(c.body))
			if c.problem == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if ev.Kind != c.kind {
					t.Errorf("kind %s, want %s", ev.Kind, c.kind)
				}
				return
			}
			var ie *InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want an InvalidError", err)
			}
			if !strings.Contains(err.Error(), c.problem) {
				t.Errorf("problems %q do not mention %q", ie.Problems, c.problem)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	for _, body := range []string{``, `[1]`, `{"a":`, `"x"`} {
		var me *MalformedError
		if _, err := testSpec.Parse([]byte(body)); !errors.As(err, &me) {
			t.Errorf("%q: err = %v, want a MalformedError", body, err)
		}
	}
}

func TestSpecFullExample(t *testing.T) {
	raw, _ := os.ReadFile("testdata/example_full_event.json")
	ev, err := testSpec.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != KindRun || ev.Job.Name != "dbt" {
		t.Errorf("read %+v", ev)
	}
}
