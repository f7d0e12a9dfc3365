package openlineage

import (
	"reflect"
	"testing"
)

const fullRun = `{
  "eventType": "FAIL", "eventTime": "2026-11-29T10:00:00.5Z",
  "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/dbt",
  "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
  "run": {"runId": "0193b9a0-0000-7000-8000-000000000001", "facets": {
    "parent": {"_producer": "p", "_schemaURL": "s", "run": {"runId": "0193b9a0-0000-7000-8000-000000000000"}, "job": {"namespace": "airflow", "name": "nightly"}},
    "errorMessage": {"_producer": "p", "_schemaURL": "s", "message": "division by zero", "programmingLanguage": "SQL"}}},
  "job": {"namespace": "dbt-sales", "name": "model.shop.orders", "facets": {
    "documentation": {"_producer": "p", "_schemaURL": "s", "description": "builds orders"},
    "ownership": {"_producer": "p", "_schemaURL": "s", "owners": [{"name": "team:sales"}]}}},
  "inputs": [{"namespace": "postgres://db:5432", "name": "shop.public.raw_orders",
    "inputFacets": {
      "dataQualityAssertions": {"_producer": "p", "_schemaURL": "s", "assertions": [
        {"assertion": "not_null", "success": true, "column": "id"},
        {"assertion": "unique", "success": false, "column": "id", "severity": "warn"},
        {"assertion": "row_count", "success": false, "severity": "error", "expected": "1000", "actual": "12"}]},
      "inputStatistics": {"_producer": "p", "_schemaURL": "s", "rowCount": 12, "size": 4096}}}],
  "outputs": [{"namespace": "postgres://db:5432", "name": "shop.public.orders",
    "facets": {
      "schema": {"_producer": "p", "_schemaURL": "s", "fields": [{"name": "id", "type": "INT", "description": "key"},
        {"name": "address", "type": "STRUCT", "fields": [{"name": "city", "type": "VARCHAR"}]}]},
      "documentation": {"_producer": "p", "_schemaURL": "s", "description": "one row per order"},
      "ownership": {"_producer": "p", "_schemaURL": "s", "owners": [{"name": "team:sales", "type": "MAINTAINER"}]},
      "symlinks": {"_producer": "p", "_schemaURL": "s", "identifiers": [{"namespace": "bigquery", "name": "p.shop.orders", "type": "TABLE"}]},
      "columnLineage": {"_producer": "p", "_schemaURL": "s", "fields": {"id": {"inputFields": [
        {"namespace": "postgres://db:5432", "name": "shop.public.raw_orders", "field": "order_id", "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}]}]}}}},
    "outputFacets": {"outputStatistics": {"_producer": "p", "_schemaURL": "s", "rowCount": 10, "size": 2048, "fileCount": 1}}}]
}`

func TestMapRunEvent(t *testing.T) {
	ev, err := testSpec.Parse([]byte(fullRun))
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := ParseNamespaceRules("dbt-sales=sales")
	m, err := testSpec.Map(ev, []byte(fullRun), "platform", rules)
	if err != nil {
		t.Fatal(err)
	}
	raw := "urn:mesh:dataset:postgres:db:5432/shop.public.raw_orders"
	orders := "urn:mesh:dataset:postgres:db:5432/shop.public.orders"
	r := m.Run
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"domain", m.Domain, "sales"},
		{"job urn", r.JobURN, "urn:mesh:job:sales:dbt-sales/model.shop.orders"},
		{"state", r.State, "FAIL"},
		{"emitter", r.Emitter, "platform"},
		{"event time", r.EventTime.Format("15:04:05.000"), "10:00:00.500"},
		{"inputs", r.Inputs, []string{raw}},
		{"outputs", r.Outputs, []string{orders}},
		{"error", r.ErrorMessage, "division by zero"},
		{"rows written", *r.RowsWritten, int64(10)},
		{"bytes written", *r.BytesWritten, int64(2048)},
		{"column lineage", len(r.ColumnLineage), 1},
		{"column input", r.ColumnLineage[0].InputDataset + "#" + r.ColumnLineage[0].InputField, raw + "#order_id"},
		{"transformation", r.ColumnLineage[0].Transformation, "DIRECT/IDENTITY"},
		{"parent run", m.ParentRunID, "0193b9a0-0000-7000-8000-000000000000"},
		{"parent job", m.ParentJobNamespace + "/" + m.ParentJobName, "airflow/nightly"},
		{"job description", m.JobDescription, "builds orders"},
		{"job owners", m.JobOwners, []string{"team:sales"}},
		{"quality results", len(m.Quality), 3},
		{"datasets with facts", len(m.Datasets), 1},
		{"stats", len(m.Stats), 2},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	q := m.Quality
	for i, want := range []struct{ name, typ, status, severity string }{
		{"not_null(id)", "validity", "PASS", "medium"},
		{"unique(id)", "validity", "WARN", "low"},
		{"row_count", "volume", "FAIL", "high"},
	} {
		if got := (struct{ name, typ, status, severity string }{q[i].CheckName, q[i].CheckType, q[i].Status, q[i].Severity}); got != want {
			t.Errorf("assertion %d = %+v, want %+v", i, got, want)
		}
		if q[i].DatasetURN != raw || q[i].EventID == m.EventID {
			t.Errorf("assertion %d on %s with id %s", i, q[i].DatasetURN, q[i].EventID)
		}
	}
	if q[2].ObservedValue == nil || *q[2].ObservedValue != 12 || *q[2].Threshold != 1000 {
		t.Errorf("row_count observed %v threshold %v", q[2].ObservedValue, q[2].Threshold)
	}
	d := m.Datasets[0]
	if d.URN != orders || !d.HasSchema || len(d.Fields) != 3 || d.Fields[2].Name != "address.city" ||
		d.Description != "one row per order" || !reflect.DeepEqual(d.Owners, []string{"team:sales"}) ||
		!reflect.DeepEqual(d.Aliases, []string{"urn:mesh:dataset:bigquery:p.shop.orders"}) {
		t.Errorf("dataset facts %+v", d)
	}
	for _, err := range []error{r.Validate(), q[0].Validate()} {
		if err != nil {
			t.Errorf("mapped event invalid: %v", err)
		}
	}
	// The same bytes are the same event, with the same derived ids.
	again, _ := testSpec.Map(ev, []byte(fullRun), "platform", rules)
	if again.EventID != m.EventID || again.Quality[1].EventID != q[1].EventID {
		t.Error("ids are not derived from the event")
	}
}

func TestMapStaticEvents(t *testing.T) {
	job := `{"eventTime": "2026-11-29T10:00:00Z", ` + producer + `, "job": {"namespace": "etl", "name": "copy"},
	  "inputs": [{"namespace": "s3://a", "name": "in"}], "outputs": [{"namespace": "s3://a", "name": "out"}]}`
	ev, err := testSpec.Parse([]byte(job))
	if err != nil {
		t.Fatal(err)
	}
	m, err := testSpec.Map(ev, []byte(job), "marketing", nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Run != nil || m.Static == nil || m.Static.JobURN != "urn:mesh:job:marketing:etl/copy" ||
		!reflect.DeepEqual(m.Static.Outputs, []string{"urn:mesh:dataset:s3:a/out"}) {
		t.Errorf("job event mapped to %+v / %+v", m.Run, m.Static)
	}
	ds := `{"eventTime": "2026-11-29T10:00:00Z", ` + producer + `, "dataset": {"namespace": "s3://a", "name": "out",
	  "facets": {"documentation": {"_producer": "p", "_schemaURL": "s", "description": "copied"}}}}`
	ev, err = testSpec.Parse([]byte(ds))
	if err != nil {
		t.Fatal(err)
	}
	m, err = testSpec.Map(ev, []byte(ds), "marketing", nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Run != nil || m.Static != nil || len(m.Datasets) != 1 || m.Datasets[0].Description != "copied" {
		t.Errorf("dataset event mapped to %+v", m)
	}
}
