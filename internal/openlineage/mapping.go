package openlineage

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// Mapped is what one OpenLineage event becomes in meshpulse: the raw event
// with its identity, and the native events and rows it implies. Each part
// is optional.
type Mapped struct {
	EventID   string // derived from the event's bytes: a resent event is the same event
	EventTime time.Time
	Kind      string
	EventType string
	Emitter   string // the domain (or platform) whose key or topic sent it
	Domain    string // the job's domain (namespace rules, else the emitter)
	Producer  string
	SchemaURL string
	Raw       []byte

	JobNamespace, JobName, JobURN string
	RunID                         string
	ParentRunID                   string
	ParentJobNamespace            string
	ParentJobName                 string
	RootRunID                     string
	JobDescription                string
	JobOwners                     []string

	Run      *events.LineageRun      // a RunEvent's run, state change and lineage
	Static   *StaticLineage          // a JobEvent's lineage
	Quality  []*events.QualityResult // dataQualityAssertions
	Datasets []DatasetFacts          // schema, ownership, documentation, symlinks
	Stats    []DatasetStats          // input/outputStatistics, dataQualityMetrics
}

// StaticLineage is the lineage a JobEvent declares without a run.
type StaticLineage struct {
	JobURN          string
	Inputs, Outputs []string
}

// DatasetFacts is what an event says about a dataset itself. Each aspect
// is kept only when its facet was sent, so that an event without a schema
// facet does not erase the fields another event reported.
type DatasetFacts struct {
	URN, Namespace, Name string

	HasSchema bool
	Fields    []Field

	HasOwners  bool
	Owners     []string // owner names, e.g. team:payments
	OwnerTypes []string

	HasDescription bool
	Description    string

	Aliases []string // symlinks, as dataset URNs
}

// Field is one column of a schema facet; nested fields are flattened with
// dotted names (address.city).
type Field struct{ Name, Type, Description string }

// DatasetStats is one statistics facet of a dataset in a run.
type DatasetStats struct {
	URN       string
	Direction string // input or output
	Facet     string // inputStatistics, outputStatistics or dataQualityMetrics
	Rows      *int64
	Bytes     *int64
	Files     *int64
	Columns   []ColumnStats
}

// ColumnStats are the per-column figures of a dataQualityMetrics facet; -1
// is "not reported".
type ColumnStats struct {
	Name                string
	NullCount, Distinct int64
	Min, Max            *float64
}

// eventNamespace seeds the derived event ids.
var eventNamespace = uuid.MustParse("6f0c4b7e-2a57-4a0e-9d2f-3e0b9b6c1d11")

// EventID is the identity of an OpenLineage event: a name-based UUID of its
// bytes. The OpenLineage transports send an event unchanged when they
// retry, so a retry is the same event and is stored once.
func EventID(raw []byte) string { return uuid.NewSHA1(eventNamespace, raw).String() }

// Map turns a validated event from emitter into meshpulse's events and
// rows. It fails only when an identity cannot be mapped (an empty
// namespace, a name no URN can hold).
func Map(ev *Event, raw []byte, emitter string, rules NamespaceRules) (*Mapped, error) {
	m := &Mapped{
		EventID: EventID(raw), EventTime: ev.EventTime.Truncate(time.Millisecond), Kind: ev.Kind, EventType: ev.EventType,
		Emitter: emitter, Domain: emitter, Producer: ev.Producer, SchemaURL: ev.SchemaURL, Raw: raw,
	}
	env := events.Envelope{EventID: m.EventID, EventTime: m.EventTime, Emitter: emitter}
	var err error
	if ev.Kind == KindRun || ev.Kind == KindJob {
		m.JobNamespace, m.JobName = ev.Job.Namespace, ev.Job.Name
		m.Domain = rules.Domain(ev.Job.Namespace, emitter)
		if m.JobURN, err = JobURN(m.Domain, ev.Job.Namespace, ev.Job.Name); err != nil {
			return nil, err
		}
		m.JobDescription = str(facet(ev.Job.Facets, "documentation"), "description")
		for _, o := range list(facet(ev.Job.Facets, "ownership"), "owners") {
			if name := str(o, "name"); name != "" {
				m.JobOwners = append(m.JobOwners, name)
			}
		}
	}
	inputs, err := m.datasets(ev.Inputs, "input", env)
	if err != nil {
		return nil, err
	}
	outputs, err := m.datasets(ev.Outputs, "output", env)
	if err != nil {
		return nil, err
	}
	switch ev.Kind {
	case KindRun:
		if ev.EventType == "START" || ev.EventType == "RUNNING" {
			// Assertions are results: a run reports them when it ends
			// (dbt-ol repeats them in START and COMPLETE/FAIL, and they
			// would count twice).
			m.Quality = nil
		}
		m.RunID = ev.Run.ID
		parent := facet(ev.Run.Facets, "parent")
		m.ParentRunID = str(obj(parent, "run"), "runId")
		m.ParentJobNamespace, m.ParentJobName = str(obj(parent, "job"), "namespace"), str(obj(parent, "job"), "name")
		m.RootRunID = str(obj(obj(parent, "root"), "run"), "runId")
		run := &events.LineageRun{
			Envelope: env, JobURN: m.JobURN, RunID: ev.Run.ID, State: ev.EventType, Producer: ev.Producer,
			Inputs: inputs, Outputs: outputs,
			ErrorMessage: str(facet(ev.Run.Facets, "errorMessage"), "message"),
		}
		for i, d := range ev.Outputs {
			cl, err := columnLineage(outputs[i], facet(d.Facets, "columnLineage"))
			if err != nil {
				return nil, err
			}
			run.ColumnLineage = append(run.ColumnLineage, cl...)
		}
		for _, s := range m.Stats {
			if s.Facet == "outputStatistics" {
				run.RowsWritten = addPtr(run.RowsWritten, s.Rows)
				run.BytesWritten = addPtr(run.BytesWritten, s.Bytes)
			}
		}
		m.Run = run
	case KindJob:
		m.Static = &StaticLineage{JobURN: m.JobURN, Inputs: inputs, Outputs: outputs}
	case KindDataset:
		if _, err := m.datasets([]Dataset{*ev.Dataset}, "", env); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// datasets maps the datasets of one side of an event: their URNs, and the
// facts, statistics and quality results their facets carry.
func (m *Mapped) datasets(ds []Dataset, direction string, env events.Envelope) ([]string, error) {
	urns := make([]string, 0, len(ds))
	for _, d := range ds {
		urn, err := DatasetURN(d.Namespace, d.Name)
		if err != nil {
			return nil, err
		}
		urns = append(urns, urn)
		facts := DatasetFacts{URN: urn, Namespace: d.Namespace, Name: d.Name}
		keep := false
		if f := facet(d.Facets, "schema"); f != nil {
			facts.HasSchema, keep = true, true
			facts.Fields = fieldsOf(list(f, "fields"), "")
		}
		if f := facet(d.Facets, "ownership"); f != nil {
			facts.HasOwners, keep = true, true
			for _, o := range list(f, "owners") {
				facts.Owners = append(facts.Owners, str(o, "name"))
				facts.OwnerTypes = append(facts.OwnerTypes, str(o, "type"))
			}
		}
		if f := facet(d.Facets, "documentation"); f != nil {
			facts.HasDescription, keep = true, true
			facts.Description = str(f, "description")
		}
		for _, id := range list(facet(d.Facets, "symlinks"), "identifiers") {
			alias, err := DatasetURN(str(id, "namespace"), str(id, "name"))
			if err != nil {
				return nil, fmt.Errorf("symlink of %s: %w", urn, err)
			}
			facts.Aliases, keep = append(facts.Aliases, alias), true
		}
		if keep {
			m.Datasets = append(m.Datasets, facts)
		}
		seen := map[string]bool{}
		for _, place := range []map[string]any{d.InputFacets, d.OutputFacets, d.Facets} {
			for _, name := range []string{"inputStatistics", "outputStatistics", "dataQualityMetrics"} {
				if f := facet(place, name); f != nil && !seen[name] {
					seen[name] = true
					m.Stats = append(m.Stats, statsOf(urn, direction, name, f))
				}
			}
			// dbt-ol sends the same assertions under inputFacets and facets.
			if f := facet(place, "dataQualityAssertions"); f != nil {
				for _, q := range assertions(urn, env, len(m.Quality), f) {
					if key := q.CheckName + "|" + q.Status; !seen[key] {
						seen[key] = true
						m.Quality = append(m.Quality, q)
					}
				}
			}
		}
	}
	return urns, nil
}

func fieldsOf(fields []map[string]any, prefix string) []Field {
	var out []Field
	for _, f := range fields {
		name := prefix + str(f, "name")
		out = append(out, Field{Name: name, Type: str(f, "type"), Description: str(f, "description")})
		out = append(out, fieldsOf(list(f, "fields"), name+".")...)
	}
	return out
}

func columnLineage(output string, f map[string]any) ([]events.ColumnLineage, error) {
	fields := obj(f, "fields")
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names) // a stable order, so that a replay writes the same rows
	var out []events.ColumnLineage
	for _, name := range names {
		spec, _ := fields[name].(map[string]any)
		for _, in := range list(spec, "inputFields") {
			inURN, err := DatasetURN(str(in, "namespace"), str(in, "name"))
			if err != nil {
				return nil, fmt.Errorf("column lineage of %s.%s: %w", output, name, err)
			}
			out = append(out, events.ColumnLineage{
				OutputDataset: output, OutputField: name, InputDataset: inURN, InputField: str(in, "field"),
				Transformation: transformation(in, spec),
			})
		}
	}
	return out, nil
}

// transformation renders a column dependency's transformations as
// TYPE/SUBTYPE, joined by commas (DIRECT/IDENTITY), or the deprecated
// field-level transformationType.
func transformation(in, spec map[string]any) string {
	var parts []string
	for _, t := range list(in, "transformations") {
		s := str(t, "type")
		if sub := str(t, "subtype"); sub != "" {
			s += "/" + sub
		}
		if t["masking"] == true {
			s += " (masked)"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return str(spec, "transformationType")
	}
	return strings.Join(parts, ",")
}

func statsOf(urn, direction, name string, f map[string]any) DatasetStats {
	s := DatasetStats{URN: urn, Direction: direction, Facet: name, Rows: integer(f, "rowCount"), Files: integer(f, "fileCount")}
	if name == "dataQualityMetrics" {
		s.Bytes = integer(f, "bytes")
	} else {
		s.Bytes = integer(f, "size")
	}
	if s.Direction == "" {
		s.Direction = "dataset"
	}
	cols := obj(f, "columnMetrics")
	names := make([]string, 0, len(cols))
	for n := range cols {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c, _ := cols[n].(map[string]any)
		cs := ColumnStats{Name: n, NullCount: -1, Distinct: -1, Min: number(c, "min"), Max: number(c, "max")}
		if v := integer(c, "nullCount"); v != nil {
			cs.NullCount = *v
		}
		if v := integer(c, "distinctCount"); v != nil {
			cs.Distinct = *v
		}
		s.Columns = append(s.Columns, cs)
	}
	return s
}

// assertions maps a dataQualityAssertions facet onto quality results, one
// per assertion, each with an id derived from the event's (so a replay
// stores each once):
//
//	check_name  the assertion's name, else assertion with "(column)" when it is about one column
//	check_type  from the assertion: not_null, unique, accepted_values, relationships… → validity;
//	            row_count, volume… → volume; freshness → freshness; schema… → schema; else custom
//	status      success → PASS; failure with severity warn → WARN; else FAIL
//	severity    error → high, warn → low, none → medium (the native default)
//	observed    actual, threshold expected, when they are numbers
func assertions(urn string, env events.Envelope, offset int, f map[string]any) []*events.QualityResult {
	var out []*events.QualityResult
	for i, a := range list(f, "assertions") {
		assertion := str(a, "assertion")
		name := str(a, "name")
		if name == "" {
			name = assertion
			if col := str(a, "column"); col != "" {
				name += "(" + col + ")"
			}
		}
		severity := strings.ToLower(str(a, "severity"))
		status := "PASS"
		if a["success"] != true {
			status = "FAIL"
			if severity == "warn" || severity == "warning" {
				status = "WARN"
			}
		}
		msg := str(a, "description")
		if msg == "" {
			msg = str(a, "content")
		}
		e := env
		e.EventID = uuid.NewSHA1(eventNamespace, []byte(fmt.Sprintf("%s|quality|%s|%d", env.EventID, urn, offset+i))).String()
		out = append(out, &events.QualityResult{
			Envelope: e, DatasetURN: urn, CheckName: name, CheckType: checkType(assertion), Status: status,
			Severity: map[string]string{"error": "high", "warn": "low", "warning": "low"}[severity], Message: msg,
			ObservedValue: parseFloat(str(a, "actual")), Threshold: parseFloat(str(a, "expected")),
		})
		if out[len(out)-1].Severity == "" {
			out[len(out)-1].Severity = "medium"
		}
	}
	return out
}

func checkType(assertion string) string {
	a := strings.ToLower(assertion)
	switch {
	case strings.Contains(a, "fresh"):
		return "freshness"
	case strings.Contains(a, "row_count") || strings.Contains(a, "volume") || strings.Contains(a, "count"):
		return "volume"
	case strings.Contains(a, "schema") || strings.Contains(a, "column_exist") || strings.Contains(a, "type"):
		return "schema"
	case strings.Contains(a, "null") || strings.Contains(a, "unique") || strings.Contains(a, "accepted") ||
		strings.Contains(a, "relationship") || strings.Contains(a, "range") || strings.Contains(a, "valid"):
		return "validity"
	}
	return "custom"
}

// facet returns a facet unless it is absent or a deletion marker.
func facet(facets map[string]any, name string) map[string]any {
	f, _ := facets[name].(map[string]any)
	if f == nil || f["_deleted"] == true {
		return nil
	}
	return f
}

func obj(m map[string]any, key string) map[string]any {
	o, _ := m[key].(map[string]any)
	return o
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func list(m map[string]any, key string) []map[string]any {
	l, _ := m[key].([]any)
	out := make([]map[string]any, 0, len(l))
	for _, v := range l {
		if o, ok := v.(map[string]any); ok {
			out = append(out, o)
		}
	}
	return out
}

func integer(m map[string]any, key string) *int64 {
	n, ok := m[key].(json.Number)
	if !ok {
		return nil
	}
	if v, err := n.Int64(); err == nil {
		return &v
	}
	if f, err := n.Float64(); err == nil {
		v := int64(f)
		return &v
	}
	return nil
}

func number(m map[string]any, key string) *float64 {
	n, ok := m[key].(json.Number)
	if !ok {
		return nil
	}
	if f, err := n.Float64(); err == nil {
		return &f
	}
	return nil
}

func parseFloat(s string) *float64 {
	if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
		return &f
	}
	return nil
}

func addPtr(a, b *int64) *int64 {
	if b == nil {
		return a
	}
	if a == nil {
		v := *b
		return &v
	}
	v := *a + *b
	return &v
}
