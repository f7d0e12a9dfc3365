package openlineage

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

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

// Event is a validated OpenLineage event. Facets stay as decoded JSON
// (objects are map[string]any, numbers json.Number): the mapping reads the
// ones it knows and the raw event keeps all of them.
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

// Run is a RunEvent's run.
type Run struct {
	ID     string
	Facets map[string]any
}

// Job is a job's identity and facets.
type Job struct {
	Namespace, Name string
	Facets          map[string]any
}

// Dataset is an input, output or static dataset.
type Dataset struct {
	Namespace, Name string
	Facets          map[string]any
	InputFacets     map[string]any
	OutputFacets    map[string]any
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
func (s *Spec) Parse(raw []byte) (*Event, error) {
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
	ev := &Event{Kind: kind}
	ev.Producer, _ = obj["producer"].(string)
	ev.SchemaURL, _ = obj["schemaURL"].(string)
	if t, ok := obj["eventTime"].(string); ok {
		if ev.EventTime, err = ParseTime(t); err != nil {
			problems = append(problems, fmt.Sprintf("at '/eventTime': %v", err))
		}
	}
	if kind == KindRun {
		ev.EventType, _ = obj["eventType"].(string)
		if ev.EventType == "" {
			ev.EventType = "OTHER"
		}
		run, _ := obj["run"].(map[string]any)
		ev.Run.ID, _ = run["runId"].(string)
		ev.Run.Facets, _ = run["facets"].(map[string]any)
		problems = append(problems, s.checkFacets("/run/facets", placeRun, ev.Run.Facets)...)
	}
	if kind == KindRun || kind == KindJob {
		job, _ := obj["job"].(map[string]any)
		ev.Job.Namespace, _ = job["namespace"].(string)
		ev.Job.Name, _ = job["name"].(string)
		ev.Job.Facets, _ = job["facets"].(map[string]any)
		problems = append(problems, s.checkFacets("/job/facets", placeJob, ev.Job.Facets)...)
		var p []string
		ev.Inputs, p = s.datasets(obj, "inputs")
		problems = append(problems, p...)
		ev.Outputs, p = s.datasets(obj, "outputs")
		problems = append(problems, p...)
	}
	if kind == KindDataset {
		d, _ := obj["dataset"].(map[string]any)
		ds, p := s.dataset(d, "/dataset")
		ev.Dataset = &ds
		problems = append(problems, p...)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, &InvalidError{Problems: dedupe(problems)}
	}
	return ev, nil
}

func (s *Spec) datasets(obj map[string]any, key string) ([]Dataset, []string) {
	list, _ := obj[key].([]any)
	var out []Dataset
	var problems []string
	for i, v := range list {
		d, _ := v.(map[string]any)
		ds, p := s.dataset(d, fmt.Sprintf("/%s/%d", key, i))
		out = append(out, ds)
		problems = append(problems, p...)
	}
	return out, problems
}

func (s *Spec) dataset(d map[string]any, at string) (Dataset, []string) {
	var ds Dataset
	ds.Namespace, _ = d["namespace"].(string)
	ds.Name, _ = d["name"].(string)
	ds.Facets, _ = d["facets"].(map[string]any)
	ds.InputFacets, _ = d["inputFacets"].(map[string]any)
	ds.OutputFacets, _ = d["outputFacets"].(map[string]any)
	var problems []string
	problems = append(problems, s.checkFacets(at+"/facets", placeDataset, ds.Facets)...)
	problems = append(problems, s.checkFacets(at+"/inputFacets", placeInput, ds.InputFacets)...)
	problems = append(problems, s.checkFacets(at+"/outputFacets", placeOutput, ds.OutputFacets)...)
	return ds, problems
}

// checkFacets validates each known facet against its own schema (the core
// schema checked them as base facets only).
func (s *Spec) checkFacets(at string, pl place, facets map[string]any) []string {
	var problems []string
	for name, v := range facets {
		sch := s.facet(pl, name)
		if sch == nil {
			continue
		}
		if m, ok := v.(map[string]any); ok && m["_deleted"] == true {
			continue // a deletion marker carries no content
		}
		if err := sch.Validate(v); err != nil {
			problems = append(problems, schemaProblems(err, at+"/"+name)...)
		}
	}
	return problems
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
