package openlineage

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"sort"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
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

	// Hash identifies the facets these facts were read from: the same
	// facts sent again (every run does) are written once per batch.
	Hash uint64
	keep bool // a facet said something
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

// Identity is who an event speaks for and where it goes, read without
// mapping its facets (what the HTTP endpoint needs).
type Identity struct {
	Domain       string // the job's domain (namespace rules, else the emitter)
	JobNamespace string
	Key          string // the Kafka record key: the job URN, or the dataset URN of a DatasetEvent
}

// Identify reads an event's identity and checks that its job and datasets
// map onto URNs. Identities inside facets (symlinks, column lineage
// inputs) are checked by the ingestor's mapping.
func (s *Spec) Identify(ev *Event, emitter string, rules NamespaceRules) (Identity, error) {
	id := Identity{Domain: emitter}
	for _, d := range append(append([]Dataset(nil), ev.Inputs...), ev.Outputs...) {
		if _, err := DatasetURN(d.Namespace, d.Name); err != nil {
			return Identity{}, err
		}
	}
	if ev.Kind == KindDataset {
		urn, err := DatasetURN(ev.Dataset.Namespace, ev.Dataset.Name)
		id.Key = urn
		return id, err
	}
	id.JobNamespace = ev.Job.Namespace
	id.Domain = rules.Domain(ev.Job.Namespace, emitter)
	urn, err := JobURN(id.Domain, ev.Job.Namespace, ev.Job.Name)
	id.Key = urn
	return id, err
}

// Map turns a validated event from emitter into meshpulse's events and
// rows. It fails only when an identity cannot be mapped (an empty
// namespace, a name no URN can hold).
func (s *Spec) Map(ev *Event, raw []byte, emitter string, rules NamespaceRules) (*Mapped, error) {
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
		var doc documentationFacet
		if facet(ev.Job.Facets, "documentation", &doc) {
			m.JobDescription = doc.Description
		}
		var own ownershipFacet
		if facet(ev.Job.Facets, "ownership", &own) {
			for _, o := range own.Owners {
				if o.Name != "" {
					m.JobOwners = append(m.JobOwners, o.Name)
				}
			}
		}
	}
	inputs, err := s.datasets(m, ev.Inputs, "input", env)
	if err != nil {
		return nil, err
	}
	outputs, err := s.datasets(m, ev.Outputs, "output", env)
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
		var parent parentFacet
		if facet(ev.Run.Facets, "parent", &parent) {
			m.ParentRunID, m.ParentJobNamespace, m.ParentJobName = parent.Run.RunID, parent.Job.Namespace, parent.Job.Name
			m.RootRunID = parent.Root.Run.RunID
		}
		run := &events.LineageRun{
			Envelope: env, JobURN: m.JobURN, RunID: ev.Run.ID, State: ev.EventType, Producer: ev.Producer,
			Inputs: inputs, Outputs: outputs,
		}
		var em errorMessageFacet
		if facet(ev.Run.Facets, "errorMessage", &em) {
			run.ErrorMessage = em.Message
		}
		for i, d := range ev.Outputs {
			var cl columnLineageFacet
			if !facet(d.Facets, "columnLineage", &cl) {
				continue
			}
			cols, err := columnLineage(outputs[i], cl)
			if err != nil {
				return nil, err
			}
			run.ColumnLineage = append(run.ColumnLineage, cols...)
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
		if _, err := s.datasets(m, []Dataset{*ev.Dataset}, "", env); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// datasets maps the datasets of one side of an event: their URNs, and the
// facts, statistics and quality results their facets carry.
func (s *Spec) datasets(m *Mapped, ds []Dataset, direction string, env events.Envelope) ([]string, error) {
	urns := make([]string, 0, len(ds))
	for _, d := range ds {
		urn, err := DatasetURN(d.Namespace, d.Name)
		if err != nil {
			return nil, err
		}
		urns = append(urns, urn)
		facts, keep, err := s.factsOf(urn, d)
		if err != nil {
			return nil, err
		}
		if keep {
			m.Datasets = append(m.Datasets, facts)
		}
		seen := map[string]bool{}
		for _, place := range []Facets{d.InputFacets, d.OutputFacets, d.Facets} {
			for _, name := range []string{"inputStatistics", "outputStatistics", "dataQualityMetrics"} {
				var st statisticsFacet
				if !seen[name] && facet(place, name, &st) {
					seen[name] = true
					m.Stats = append(m.Stats, statsOf(urn, direction, name, st))
				}
			}
			// dbt-ol sends the same assertions under inputFacets and facets.
			var af assertionsFacet
			if facet(place, "dataQualityAssertions", &af) {
				for _, q := range assertions(urn, env, len(m.Quality), af) {
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

// factsFacets are the facets that describe a dataset itself.
var factsFacets = []string{"schema", "ownership", "documentation", "symlinks"}

// factsOf reads what a dataset's facets say about it. Producers send the
// same facts with every run, so they are decoded once per distinct content
// and shared (DatasetFacts is never modified after).
func (s *Spec) factsOf(urn string, d Dataset) (DatasetFacts, bool, error) {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(urn)
	any := false
	for _, name := range factsFacets {
		if raw, ok := d.Facets[name]; ok {
			any = true
			h.WriteString(name)
			h.Write(raw)
		}
	}
	if !any {
		return DatasetFacts{}, false, nil
	}
	key := h.Sum64()
	if f, ok := s.factsSeen.get(key); ok {
		return f, f.keep, nil
	}
	facts, err := decodeFacts(urn, d)
	if err != nil {
		return DatasetFacts{}, false, err
	}
	facts.Hash = key
	s.factsSeen.put(key, facts)
	return facts, facts.keep, nil
}

func decodeFacts(urn string, d Dataset) (DatasetFacts, error) {
	facts := DatasetFacts{URN: urn, Namespace: d.Namespace, Name: d.Name}
	keep := false
	var sf schemaFacet
	if facet(d.Facets, "schema", &sf) {
		facts.HasSchema, keep = true, true
		facts.Fields = fieldsOf(sf.Fields, "")
	}
	var own ownershipFacet
	if facet(d.Facets, "ownership", &own) {
		facts.HasOwners, keep = true, true
		for _, o := range own.Owners {
			facts.Owners = append(facts.Owners, o.Name)
			facts.OwnerTypes = append(facts.OwnerTypes, o.Type)
		}
	}
	var doc documentationFacet
	if facet(d.Facets, "documentation", &doc) {
		facts.HasDescription, keep = true, true
		facts.Description = doc.Description
	}
	var sym symlinksFacet
	if facet(d.Facets, "symlinks", &sym) {
		for _, id := range sym.Identifiers {
			alias, err := DatasetURN(id.Namespace, id.Name)
			if err != nil {
				return DatasetFacts{}, fmt.Errorf("symlink of %s: %w", urn, err)
			}
			facts.Aliases, keep = append(facts.Aliases, alias), true
		}
	}
	facts.keep = keep
	return facts, nil
}

// The facets the mapping reads, as the spec defines them (members it does
// not read are left out).
type (
	schemaFacet struct {
		Fields []schemaField `json:"fields"`
	}
	schemaField struct {
		Name        string        `json:"name"`
		Type        string        `json:"type"`
		Description string        `json:"description"`
		Fields      []schemaField `json:"fields"`
	}
	ownershipFacet struct {
		Owners []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"owners"`
	}
	documentationFacet struct {
		Description string `json:"description"`
	}
	symlinksFacet struct {
		Identifiers []struct {
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
		} `json:"identifiers"`
	}
	columnLineageFacet struct {
		Fields map[string]struct {
			InputFields        []columnInput `json:"inputFields"`
			TransformationType string        `json:"transformationType"`
		} `json:"fields"`
	}
	columnInput struct {
		Namespace       string `json:"namespace"`
		Name            string `json:"name"`
		Field           string `json:"field"`
		Transformations []struct {
			Type    string `json:"type"`
			Subtype string `json:"subtype"`
			Masking bool   `json:"masking"`
		} `json:"transformations"`
	}
	assertionsFacet struct {
		Assertions []assertion `json:"assertions"`
	}
	assertion struct {
		Assertion   string `json:"assertion"`
		Success     bool   `json:"success"`
		Column      string `json:"column"`
		Severity    string `json:"severity"`
		Name        string `json:"name"`
		Description string `json:"description"`
		Expected    string `json:"expected"`
		Actual      string `json:"actual"`
		Content     string `json:"content"`
	}
	statisticsFacet struct {
		RowCount      *float64 `json:"rowCount"`
		Size          *float64 `json:"size"`  // input/outputStatistics
		Bytes         *float64 `json:"bytes"` // dataQualityMetrics
		FileCount     *float64 `json:"fileCount"`
		ColumnMetrics map[string]struct {
			NullCount     *float64 `json:"nullCount"`
			DistinctCount *float64 `json:"distinctCount"`
			Min           *float64 `json:"min"`
			Max           *float64 `json:"max"`
		} `json:"columnMetrics"`
	}
	parentFacet struct {
		Run struct {
			RunID string `json:"runId"`
		} `json:"run"`
		Job struct {
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
		} `json:"job"`
		Root struct {
			Run struct {
				RunID string `json:"runId"`
			} `json:"run"`
		} `json:"root"`
	}
	errorMessageFacet struct {
		Message string `json:"message"`
	}
)

// facet decodes the named facet into into, unless it is absent or a
// deletion marker. It was validated, so a decoding error cannot happen;
// one would read as absent.
func facet(facets Facets, name string, into any) bool {
	raw, ok := facets[name]
	if !ok {
		return false
	}
	if bytes.Contains(raw, []byte(`"_deleted"`)) {
		var del struct {
			Deleted bool `json:"_deleted"`
		}
		if jsonv2.Unmarshal(raw, &del) == nil && del.Deleted {
			return false
		}
	}
	return jsonv2.Unmarshal(raw, into) == nil
}

func fieldsOf(fields []schemaField, prefix string) []Field {
	var out []Field
	for _, f := range fields {
		name := prefix + f.Name
		out = append(out, Field{Name: name, Type: f.Type, Description: f.Description})
		out = append(out, fieldsOf(f.Fields, name+".")...)
	}
	return out
}

func columnLineage(output string, f columnLineageFacet) ([]events.ColumnLineage, error) {
	names := make([]string, 0, len(f.Fields))
	for name := range f.Fields {
		names = append(names, name)
	}
	sort.Strings(names) // a stable order, so that a replay writes the same rows
	var out []events.ColumnLineage
	for _, name := range names {
		spec := f.Fields[name]
		for _, in := range spec.InputFields {
			inURN, err := DatasetURN(in.Namespace, in.Name)
			if err != nil {
				return nil, fmt.Errorf("column lineage of %s.%s: %w", output, name, err)
			}
			out = append(out, events.ColumnLineage{
				OutputDataset: output, OutputField: name, InputDataset: inURN, InputField: in.Field,
				Transformation: transformation(in, spec.TransformationType),
			})
		}
	}
	return out, nil
}

// transformation renders a column dependency's transformations as
// TYPE/SUBTYPE, joined by commas (DIRECT/IDENTITY), or the deprecated
// field-level transformationType.
func transformation(in columnInput, fieldType string) string {
	var parts []string
	for _, t := range in.Transformations {
		s := t.Type
		if t.Subtype != "" {
			s += "/" + t.Subtype
		}
		if t.Masking {
			s += " (masked)"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return fieldType
	}
	return strings.Join(parts, ",")
}

func statsOf(urn, direction, name string, f statisticsFacet) DatasetStats {
	s := DatasetStats{URN: urn, Direction: direction, Facet: name, Rows: toInt(f.RowCount), Files: toInt(f.FileCount)}
	if name == "dataQualityMetrics" {
		s.Bytes = toInt(f.Bytes)
	} else {
		s.Bytes = toInt(f.Size)
	}
	if s.Direction == "" {
		s.Direction = "dataset"
	}
	names := make([]string, 0, len(f.ColumnMetrics))
	for n := range f.ColumnMetrics {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := f.ColumnMetrics[n]
		cs := ColumnStats{Name: n, NullCount: -1, Distinct: -1, Min: c.Min, Max: c.Max}
		if v := toInt(c.NullCount); v != nil {
			cs.NullCount = *v
		}
		if v := toInt(c.DistinctCount); v != nil {
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
func assertions(urn string, env events.Envelope, offset int, f assertionsFacet) []*events.QualityResult {
	var out []*events.QualityResult
	for i, a := range f.Assertions {
		name := a.Name
		if name == "" {
			name = a.Assertion
			if a.Column != "" {
				name += "(" + a.Column + ")"
			}
		}
		severity := strings.ToLower(a.Severity)
		status := "PASS"
		if !a.Success {
			status = "FAIL"
			if severity == "warn" || severity == "warning" {
				status = "WARN"
			}
		}
		msg := a.Description
		if msg == "" {
			msg = a.Content
		}
		sev := map[string]string{"error": "high", "warn": "low", "warning": "low"}[severity]
		if sev == "" {
			sev = "medium"
		}
		e := env
		e.EventID = uuid.NewSHA1(eventNamespace, []byte(fmt.Sprintf("%s|quality|%s|%d", env.EventID, urn, offset+i))).String()
		out = append(out, &events.QualityResult{
			Envelope: e, DatasetURN: urn, CheckName: name, CheckType: checkType(a.Assertion), Status: status,
			Severity: sev, Message: msg, ObservedValue: parseFloat(a.Actual), Threshold: parseFloat(a.Expected),
		})
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

func toInt(f *float64) *int64 {
	if f == nil {
		return nil
	}
	v := int64(*f)
	return &v
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
