package openlineage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// The three kinds of OpenLineage event.
const (
	KindRun     = "RunEvent"
	KindDataset = "DatasetEvent" // static metadata of a dataset
	KindJob     = "JobEvent"     // static lineage of a job, without a run
)

// RunStates are the eventType values of a RunEvent.
var RunStates = []string{"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}

// Event is a validated OpenLineage event. Facets stay as their JSON: the
// mapping decodes the ones it knows and the raw event keeps all of them.
type Event struct {
	Kind      string
	EventType string // RunEvent only; OTHER when the producer sent none
	EventTime time.Time
	Producer  string
	SchemaURL string
	Run       Run // RunEvent
	Job       Job // RunEvent and JobEvent
	Inputs    []Dataset
	Outputs   []Dataset
	Dataset   *Dataset // DatasetEvent
}

// Facets are the facets of one place, by name, as JSON.
type Facets map[string]jsontext.Value

// Run is a RunEvent's run.
type Run struct {
	ID     string
	Facets Facets
}

// Job is a job's identity and facets.
type Job struct {
	Namespace, Name string
	Facets          Facets
}

// Dataset is an input, output or static dataset.
type Dataset struct {
	Namespace, Name string
	Facets          Facets
	InputFacets     Facets
	OutputFacets    Facets
}

// InvalidError lists everything wrong with an event, each problem with
// where in the event it is (a JSON pointer).
type InvalidError struct {
	Problems []string
}

func (e *InvalidError) Error() string {
	return "invalid OpenLineage event: " + strings.Join(e.Problems, "; ")
}

// MalformedError is a body that is not a JSON object.
type MalformedError struct{ Err error }

func (e *MalformedError) Error() string { return "not a JSON object: " + e.Err.Error() }
func (e *MalformedError) Unwrap() error { return e.Err }

var printer = message.NewPrinter(language.English)

// Parse decodes and validates one OpenLineage event against the embedded
// schemas. It is lenient where real producers need it (documented in
// docs/openlineage.md):
//   - a null value counts as absent (producers serialise unset optionals
//     as null where the schema wants a string or an object);
//   - eventTime may lack a zone (read as UTC) or use a space for the T;
//   - format keywords (uri, uuid, date-time) are not asserted: producers
//     send "file" namespaces and job-made run ids;
//   - a facet the spec does not define (a custom facet) is checked only as
//     a base facet, and a known facet found in another place than the spec
//     puts it (dataQualityAssertions under facets instead of inputFacets)
//     is checked against its own schema;
//   - eventType may be absent on a RunEvent (it then reads as OTHER).
//
// The common case is fast: the event's frame is decoded into structs and
// checked against what the core schema requires, and each facet is
// validated against its schema once per distinct content (producers send
// the same schema facet with every run). Whatever the fast path does not
// take is validated in full by the generic validator, whose problems are
// the ones reported; TestFastPathAgrees and FuzzEvent hold the two paths to
// the same verdict.
func (s *Spec) Parse(raw []byte) (*Event, error) {
	if ev, ok := s.parseFast(raw); ok {
		return ev, nil
	}
	return s.parseSlow(raw)
}

// eventMembers are the members each kind's schema constrains; the slow
// path hands only those, nulls dropped, to the fast one.
var eventMembers = map[string][]string{
	KindRun:     {"eventTime", "eventType", "producer", "schemaURL", "run", "job", "inputs", "outputs"},
	KindJob:     {"eventTime", "producer", "schemaURL", "job", "inputs", "outputs"},
	KindDataset: {"eventTime", "producer", "schemaURL", "dataset"},
}

// parseSlow validates with the generic validator; an event it accepts is
// read again, reduced to what its kind's schema constrains.
func (s *Spec) parseSlow(raw []byte) (*Event, error) {
	obj, err := s.problems(raw)
	if err != nil {
		return nil, err
	}
	reduced := map[string]any{}
	for _, k := range eventMembers[kindOf(obj)] {
		if v, ok := obj[k]; ok {
			reduced[k] = v
		}
	}
	b, err := json.Marshal(reduced)
	if err == nil {
		if ev, ok := s.parseFast(b); ok {
			return ev, nil
		}
	}
	// The schemas accept what meshpulse's reading of them refuses: a bug,
	// said as such rather than hidden.
	return nil, &InvalidError{Problems: []string{"the schemas accept this event but meshpulse cannot read it; please report it"}}
}

// wire is the frame of an event as JSON: what the core schema constrains,
// with the facets left as JSON. Pointers tell a missing member from an
// empty one.
type wire struct {
	EventTime *string     `json:"eventTime"`
	EventType *string     `json:"eventType"`
	Producer  *string     `json:"producer"`
	SchemaURL *string     `json:"schemaURL"`
	Run       *wireRun    `json:"run"`
	Job       *wireJob    `json:"job"`
	Inputs    []*wireData `json:"inputs"`
	Outputs   []*wireData `json:"outputs"`
	Dataset   *wireData   `json:"dataset"`
}

type wireRun struct {
	RunID  *string `json:"runId"`
	Facets Facets  `json:"facets"`
}

type wireJob struct {
	Namespace *string `json:"namespace"`
	Name      *string `json:"name"`
	Facets    Facets  `json:"facets"`
}

type wireData struct {
	Namespace    *string `json:"namespace"`
	Name         *string `json:"name"`
	Facets       Facets  `json:"facets"`
	InputFacets  Facets  `json:"inputFacets"`
	OutputFacets Facets  `json:"outputFacets"`
}

// parseFast accepts an event whose frame decodes into wire and meets every
// constraint of the core schema, and whose facets are valid; anything
// else is left to the generic validator.
func (s *Spec) parseFast(raw []byte) (*Event, bool) {
	// JSON v2 semantics: member names match exactly (the schema's do;
	// encoding/json's case-insensitive match would read "Producer" as
	// producer), duplicate names and invalid UTF-8 are refused here and
	// left to the slow path.
	var w wire
	if err := jsonv2.Unmarshal(raw, &w); err != nil {
		return nil, false
	}
	if w.EventTime == nil || w.Producer == nil || w.SchemaURL == nil {
		return nil, false
	}
	t, err := ParseTime(*w.EventTime)
	if err != nil {
		return nil, false
	}
	ev := &Event{EventTime: t, Producer: *w.Producer, SchemaURL: *w.SchemaURL}
	switch {
	case w.Run != nil:
		ev.Kind = KindRun
		if w.Job == nil || w.Run.RunID == nil {
			return nil, false
		}
		ev.EventType = "OTHER"
		if w.EventType != nil {
			if !slices.Contains(RunStates, *w.EventType) {
				return nil, false
			}
			ev.EventType = *w.EventType
		}
		ev.Run = Run{ID: *w.Run.RunID, Facets: w.Run.Facets}
		if !s.facetsValid(placeRun, ev.Run.Facets) {
			return nil, false
		}
	case w.Dataset != nil && w.Job == nil:
		ev.Kind = KindDataset
		if w.Inputs != nil || w.Outputs != nil || w.EventType != nil {
			return nil, false // not a DatasetEvent's: the slow path drops them
		}
		d, ok := s.datasetFast(w.Dataset)
		if !ok {
			return nil, false
		}
		ev.Dataset = &d
		return ev, true
	case w.Job != nil:
		ev.Kind = KindJob
		if w.EventType != nil {
			return nil, false
		}
	default:
		return nil, false
	}
	if w.Job.Namespace == nil || w.Job.Name == nil {
		return nil, false
	}
	ev.Job = Job{Namespace: *w.Job.Namespace, Name: *w.Job.Name, Facets: w.Job.Facets}
	if !s.facetsValid(placeJob, ev.Job.Facets) {
		return nil, false
	}
	for _, side := range []struct {
		in  []*wireData
		out *[]Dataset
	}{{w.Inputs, &ev.Inputs}, {w.Outputs, &ev.Outputs}} {
		for _, wd := range side.in {
			d, ok := s.datasetFast(wd)
			if !ok {
				return nil, false
			}
			*side.out = append(*side.out, d)
		}
	}
	return ev, true
}

func (s *Spec) datasetFast(wd *wireData) (Dataset, bool) {
	if wd == nil || wd.Namespace == nil || wd.Name == nil {
		return Dataset{}, false
	}
	d := Dataset{Namespace: *wd.Namespace, Name: *wd.Name, Facets: wd.Facets, InputFacets: wd.InputFacets, OutputFacets: wd.OutputFacets}
	ok := s.facetsValid(placeDataset, d.Facets) && s.facetsValid(placeInput, d.InputFacets) && s.facetsValid(placeOutput, d.OutputFacets)
	return d, ok
}

// facetsValid validates each facet of a place, against its own schema
// when the spec defines one and as a base facet of the place always. A
// facet that validated once is remembered by its content.
func (s *Spec) facetsValid(pl place, facets Facets) bool {
	for name, raw := range facets {
		if isNull(raw) {
			delete(facets, name) // null is absent
			continue
		}
		key := s.facetKey(pl, name, raw)
		if _, ok := s.seen.get(key); ok {
			continue
		}
		if len(s.checkFacet("", pl, name, raw)) > 0 {
			return false
		}
		s.seen.put(key, struct{}{})
	}
	return true
}

// checkFacet validates one facet, nulls dropped, and returns its problems.
func (s *Spec) checkFacet(at string, pl place, name string, raw []byte) []string {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return []string{fmt.Sprintf("at '%s/%s': %v", at, name, err)}
	}
	dropNulls(doc)
	var problems []string
	if err := s.bases[pl].Validate(doc); err != nil {
		problems = append(problems, schemaProblems(err, at+"/"+name)...)
	}
	if m, ok := doc.(map[string]any); ok && m["_deleted"] == true {
		return problems // a deletion marker carries no content
	}
	if sch := s.facet(pl, name); sch != nil {
		if err := sch.Validate(doc); err != nil {
			problems = append(problems, schemaProblems(err, at+"/"+name)...)
		}
	}
	return problems
}

func isNull(raw []byte) bool {
	return len(bytes.TrimSpace(raw)) == 4 && string(bytes.TrimSpace(raw)) == "null"
}

// problems validates an event with the generic validator and returns it,
// nulls dropped, or why it is refused.
func (s *Spec) problems(raw []byte) (map[string]any, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, &MalformedError{Err: err}
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, &MalformedError{Err: fmt.Errorf("a JSON %s", jsonKind(doc))}
	}
	dropNulls(obj)
	kind := kindOf(obj)
	var problems []string
	if err := s.events[kind].Validate(obj); err != nil {
		problems = append(problems, schemaProblems(err, "")...)
	}
	if t, ok := obj["eventTime"].(string); ok {
		if _, err := ParseTime(t); err != nil {
			problems = append(problems, fmt.Sprintf("at '/eventTime': %v", err))
		}
	}
	facetsAt := func(at string, pl place, v any) {
		m, _ := v.(map[string]any)
		for name, f := range m {
			b, _ := json.Marshal(f)
			problems = append(problems, s.checkFacet(at, pl, name, b)...)
		}
	}
	dataset := func(at string, d any) {
		m, _ := d.(map[string]any)
		facetsAt(at+"/facets", placeDataset, m["facets"])
		facetsAt(at+"/inputFacets", placeInput, m["inputFacets"])
		facetsAt(at+"/outputFacets", placeOutput, m["outputFacets"])
	}
	if kind == KindRun {
		run, _ := obj["run"].(map[string]any)
		facetsAt("/run/facets", placeRun, run["facets"])
	}
	if kind != KindDataset {
		job, _ := obj["job"].(map[string]any)
		facetsAt("/job/facets", placeJob, job["facets"])
	}
	if kind != KindDataset {
		for _, side := range []string{"inputs", "outputs"} {
			list, _ := obj[side].([]any)
			for i, d := range list {
				dataset(fmt.Sprintf("/%s/%d", side, i), d)
			}
		}
	} else {
		dataset("/dataset", obj["dataset"])
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, &InvalidError{Problems: dedupe(problems)}
	}
	return obj, nil
}

// schemaProblems flattens a validation error into one line per leaf.
func schemaProblems(err error, prefix string) []string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []string{err.Error()}
	}
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			out = append(out, fmt.Sprintf("at '%s%s': %s", prefix, pointer(e.InstanceLocation), e.ErrorKind.LocalizedString(printer)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return out
}

func pointer(loc []string) string {
	if len(loc) == 0 {
		return ""
	}
	return "/" + strings.Join(loc, "/")
}

// kindOf tells the event kind by its shape, so that errors are reported
// against that kind only (not against all three of the spec's oneOf).
func kindOf(obj map[string]any) string {
	_, run := obj["run"]
	_, dataset := obj["dataset"]
	_, job := obj["job"]
	switch {
	case run:
		return KindRun
	case dataset && !job:
		return KindDataset
	case job:
		return KindJob
	}
	return KindRun
}

// dropNulls removes null members of every object, recursively.
func dropNulls(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			if c == nil {
				delete(t, k)
				continue
			}
			dropNulls(c)
		}
	case []any:
		for _, c := range t {
			dropNulls(c)
		}
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "array"
	case string:
		return "string"
	case nil:
		return "null"
	case bool:
		return "boolean"
	}
	return "number"
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// timeLayouts are the forms of eventTime producers send: RFC 3339 as the
// spec says, and ISO 8601 without a zone or with a space.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

// ParseTime reads an OpenLineage timestamp; one without a zone is UTC.
func ParseTime(s string) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot read %q as a time (want RFC 3339, e.g. 2026-01-02T03:04:05.678Z)", s)
}
