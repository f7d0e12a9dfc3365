package events

import (
	"fmt"
	"time"
)

// This file converts between the typed events and goavro's native form
// (map[string]any for records, []any for arrays, map[string]any{"type": v}
// for non-null union members, time.Time for timestamp-millis). Decoding
// reads fields by name, so a record written by an older schema version
// has already been filled with the current schema's defaults (resolve.go).

const ns = "mesh.events."

type native = map[string]any

func (e *Envelope) toNative(m native) {
	m["event_id"] = e.EventID
	m["event_time"] = e.EventTime
	m["emitter"] = e.Emitter
}

func (e *Envelope) fromNative(m native) {
	e.EventID = str(m, "event_id")
	e.EventTime = timestamp(m, "event_time")
	e.Emitter = str(m, "emitter")
}

func (e *ProductMetadata) toNative() native {
	m := native{}
	e.Envelope.toNative(m)
	m["product_urn"] = e.ProductURN
	m["domain"] = e.Domain
	m["name"] = e.Name
	m["description"] = e.Description
	m["owners"] = anySlice(e.Owners)
	m["tags"] = anySlice(e.Tags)
	m["lifecycle"] = e.Lifecycle
	m["documentation_url"] = optString(e.DocumentationURL)
	m["access_notes"] = e.AccessNotes
	outs := make([]any, len(e.Outputs))
	for i, o := range e.Outputs {
		fields := make([]any, len(o.Fields))
		for j, f := range o.Fields {
			fields[j] = native{"name": f.Name, "type": f.Type, "description": f.Description,
				"classification": f.Classification, "pii": f.PII}
		}
		outs[i] = native{"dataset_urn": o.DatasetURN, "description": o.Description,
			"schema_ref": optString(o.SchemaRef), "fields": fields}
	}
	m["outputs"] = outs
	m["inputs"] = anySlice(e.Inputs)
	if e.SLO == nil {
		m["slo"] = nil
	} else {
		slo := native{"freshness_seconds": nil, "min_quality_pass_rate": nil}
		if e.SLO.FreshnessSeconds != nil {
			slo["freshness_seconds"] = native{"long": *e.SLO.FreshnessSeconds}
		}
		if e.SLO.MinQualityPassRate != nil {
			slo["min_quality_pass_rate"] = native{"double": *e.SLO.MinQualityPassRate}
		}
		m["slo"] = native{ns + "ServiceLevelObjectives": slo}
	}
	return m
}

func (e *ProductMetadata) fromNative(m native) {
	e.Envelope.fromNative(m)
	e.ProductURN = str(m, "product_urn")
	e.Domain = str(m, "domain")
	e.Name = str(m, "name")
	e.Description = str(m, "description")
	e.Owners = strs(m, "owners")
	e.Tags = strs(m, "tags")
	e.Lifecycle = str(m, "lifecycle")
	e.DocumentationURL = optStr(m, "documentation_url")
	e.AccessNotes = str(m, "access_notes")
	for _, o := range records(m, "outputs") {
		out := OutputDataset{DatasetURN: str(o, "dataset_urn"), Description: str(o, "description"),
			SchemaRef: optStr(o, "schema_ref")}
		for _, f := range records(o, "fields") {
			out.Fields = append(out.Fields, DatasetField{Name: str(f, "name"), Type: str(f, "type"),
				Description: str(f, "description"), Classification: str(f, "classification"), PII: boolean(f, "pii")})
		}
		e.Outputs = append(e.Outputs, out)
	}
	e.Inputs = strs(m, "inputs")
	if slo := unionRecord(m, "slo"); slo != nil {
		e.SLO = &SLO{FreshnessSeconds: optI64(slo, "freshness_seconds"), MinQualityPassRate: optF64(slo, "min_quality_pass_rate")}
	}
}

func (e *LineageRun) toNative() native {
	m := native{}
	e.Envelope.toNative(m)
	m["job_urn"] = e.JobURN
	m["run_id"] = e.RunID
	m["state"] = e.State
	m["producer"] = e.Producer
	m["inputs"] = anySlice(e.Inputs)
	m["outputs"] = anySlice(e.Outputs)
	cls := make([]any, len(e.ColumnLineage))
	for i, c := range e.ColumnLineage {
		cls[i] = native{"output_dataset": c.OutputDataset, "output_field": c.OutputField,
			"input_dataset": c.InputDataset, "input_field": c.InputField, "transformation": c.Transformation}
	}
	m["column_lineage"] = cls
	m["rows_written"] = optLong(e.RowsWritten)
	m["bytes_written"] = optLong(e.BytesWritten)
	m["error_message"] = optString(e.ErrorMessage)
	return m
}

func (e *LineageRun) fromNative(m native) {
	e.Envelope.fromNative(m)
	e.JobURN = str(m, "job_urn")
	e.RunID = str(m, "run_id")
	e.State = str(m, "state")
	e.Producer = str(m, "producer")
	e.Inputs = strs(m, "inputs")
	e.Outputs = strs(m, "outputs")
	for _, c := range records(m, "column_lineage") {
		e.ColumnLineage = append(e.ColumnLineage, ColumnLineage{OutputDataset: str(c, "output_dataset"),
			OutputField: str(c, "output_field"), InputDataset: str(c, "input_dataset"),
			InputField: str(c, "input_field"), Transformation: str(c, "transformation")})
	}
	e.RowsWritten = optI64(m, "rows_written")
	e.BytesWritten = optI64(m, "bytes_written")
	e.ErrorMessage = optStr(m, "error_message")
}

func (e *UsageEvent) toNative() native {
	m := native{}
	e.Envelope.toNative(m)
	m["dataset_urn"] = e.DatasetURN
	m["consumer"] = native{"user": e.Consumer.User, "team": e.Consumer.Team,
		"domain": e.Consumer.Domain, "tool": e.Consumer.Tool}
	m["access_kind"] = e.AccessKind
	m["rows_read"] = e.RowsRead
	m["duration_ms"] = e.DurationMs
	return m
}

func (e *UsageEvent) fromNative(m native) {
	e.Envelope.fromNative(m)
	e.DatasetURN = str(m, "dataset_urn")
	c, _ := m["consumer"].(native)
	e.Consumer = Consumer{User: str(c, "user"), Team: str(c, "team"), Domain: str(c, "domain"), Tool: str(c, "tool")}
	e.AccessKind = str(m, "access_kind")
	e.RowsRead = i64(m, "rows_read")
	e.DurationMs = i64(m, "duration_ms")
}

func (e *QualityResult) toNative() native {
	m := native{}
	e.Envelope.toNative(m)
	m["dataset_urn"] = e.DatasetURN
	m["check_name"] = e.CheckName
	m["check_type"] = e.CheckType
	m["status"] = e.Status
	m["severity"] = e.Severity
	m["observed_value"] = optDouble(e.ObservedValue)
	m["threshold"] = optDouble(e.Threshold)
	m["message"] = e.Message
	return m
}

func (e *QualityResult) fromNative(m native) {
	e.Envelope.fromNative(m)
	e.DatasetURN = str(m, "dataset_urn")
	e.CheckName = str(m, "check_name")
	e.CheckType = str(m, "check_type")
	e.Status = str(m, "status")
	e.Severity = str(m, "severity")
	e.ObservedValue = optF64(m, "observed_value")
	e.Threshold = optF64(m, "threshold")
	e.Message = str(m, "message")
}

func (e *ScoreChanged) toNative() native {
	m := native{}
	e.Envelope.toNative(m)
	m["product_urn"] = e.ProductURN
	m["domain"] = e.Domain
	m["old_health"] = optDouble(e.OldHealth)
	m["new_health"] = optDouble(e.NewHealth)
	m["old_trust"] = optDouble(e.OldTrust)
	m["new_trust"] = optDouble(e.NewTrust)
	m["old_health_band"] = optString(e.OldHealthBand)
	m["new_health_band"] = e.NewHealthBand
	m["old_trust_band"] = optString(e.OldTrustBand)
	m["new_trust_band"] = e.NewTrustBand
	comps := make([]any, len(e.Components))
	for i, c := range e.Components {
		comps[i] = native{"name": c.Name, "score": c.Score, "weight": c.Weight, "detail": c.Detail}
	}
	m["components"] = comps
	m["reasons"] = anySlice(e.Reasons)
	m["cause"] = e.Cause
	causes := make([]any, len(e.RootCauses))
	for i, c := range e.RootCauses {
		causes[i] = native{"product_urn": c.ProductURN, "hops": int32(c.Hops), "health_band": c.HealthBand, "signals": anySlice(c.Signals)}
	}
	m["root_causes"] = causes
	return m
}

func (e *ScoreChanged) fromNative(m native) {
	e.Envelope.fromNative(m)
	e.ProductURN = str(m, "product_urn")
	e.Domain = str(m, "domain")
	e.OldHealth = optF64(m, "old_health")
	e.NewHealth = optF64(m, "new_health")
	e.OldTrust = optF64(m, "old_trust")
	e.NewTrust = optF64(m, "new_trust")
	e.OldHealthBand = optStr(m, "old_health_band")
	e.NewHealthBand = str(m, "new_health_band")
	e.OldTrustBand = optStr(m, "old_trust_band")
	e.NewTrustBand = str(m, "new_trust_band")
	for _, c := range records(m, "components") {
		e.Components = append(e.Components, ScoreComponent{Name: str(c, "name"), Score: f64(c, "score"),
			Weight: f64(c, "weight"), Detail: str(c, "detail")})
	}
	e.Reasons = strs(m, "reasons")
	e.Cause = str(m, "cause")
	for _, c := range records(m, "root_causes") {
		n, _ := c["hops"].(int32)
		e.RootCauses = append(e.RootCauses, RootCause{ProductURN: str(c, "product_urn"), Hops: int(n),
			HealthBand: str(c, "health_band"), Signals: strs(c, "signals")})
	}
}

// toNative dispatches on the concrete type.
func toNative(ev Event) (native, error) {
	switch e := ev.(type) {
	case *ProductMetadata:
		return e.toNative(), nil
	case *LineageRun:
		return e.toNative(), nil
	case *UsageEvent:
		return e.toNative(), nil
	case *QualityResult:
		return e.toNative(), nil
	case *ScoreChanged:
		return e.toNative(), nil
	}
	return nil, fmt.Errorf("unsupported event type %T", ev)
}

func fromNative(f Family, m native) Event {
	ev := NewEvent(f)
	switch e := ev.(type) {
	case *ProductMetadata:
		e.fromNative(m)
	case *LineageRun:
		e.fromNative(m)
	case *UsageEvent:
		e.fromNative(m)
	case *QualityResult:
		e.fromNative(m)
	case *ScoreChanged:
		e.fromNative(m)
	}
	return ev
}

// Readers of native values. A value of the wrong Go type reads as the zero
// value: the codec has already checked types against the writer schema, so
// that only happens for fields a future schema dropped, and Validate then
// reports what is missing.

func str(m native, k string) string { s, _ := m[k].(string); return s }
func i64(m native, k string) int64  { v, _ := m[k].(int64); return v }
func f64(m native, k string) float64 {
	v, _ := m[k].(float64)
	return v
}
func boolean(m native, k string) bool { v, _ := m[k].(bool); return v }

func timestamp(m native, k string) time.Time {
	switch v := m[k].(type) {
	case time.Time:
		return v.UTC()
	case int64:
		return time.UnixMilli(v).UTC()
	}
	return time.Time{}
}

func strs(m native, k string) []string {
	arr, _ := m[k].([]any)
	if len(arr) == 0 {
		return nil
	}
	out := make([]string, 0, len(arr))
	for _, v := range arr {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

func records(m native, k string) []native {
	arr, _ := m[k].([]any)
	out := make([]native, 0, len(arr))
	for _, v := range arr {
		if r, ok := v.(native); ok {
			out = append(out, r)
		}
	}
	return out
}

// unionValue returns the single member of a non-null union value.
func unionValue(m native, k string) (any, bool) {
	u, ok := m[k].(native)
	if !ok || len(u) != 1 {
		return nil, false
	}
	for _, v := range u {
		return v, true
	}
	return nil, false
}

func optStr(m native, k string) string {
	v, _ := unionValue(m, k)
	s, _ := v.(string)
	return s
}

func optI64(m native, k string) *int64 {
	if v, ok := unionValue(m, k); ok {
		if n, ok := v.(int64); ok {
			return &n
		}
	}
	return nil
}

func optF64(m native, k string) *float64 {
	if v, ok := unionValue(m, k); ok {
		if f, ok := v.(float64); ok {
			return &f
		}
	}
	return nil
}

func unionRecord(m native, k string) native {
	v, _ := unionValue(m, k)
	r, _ := v.(native)
	return r
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func optString(s string) any {
	if s == "" {
		return nil
	}
	return native{"string": s}
}

func optLong(v *int64) any {
	if v == nil {
		return nil
	}
	return native{"long": *v}
}

func optDouble(v *float64) any {
	if v == nil {
		return nil
	}
	return native{"double": *v}
}
