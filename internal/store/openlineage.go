package store

import (
	"bytes"
	"math"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/meshpulse/meshpulse/internal/openlineage"
)

// AddOpenLineage normalises what an OpenLineage event says beyond the
// native events it maps onto (its run and quality results are added with
// AddLineage and AddQuality): the raw event, the dataset facts, the
// statistics and, for a JobEvent, its static lineage edges.
func (b *Batch) AddOpenLineage(m *openlineage.Mapped) {
	e := &b.olEvents
	e.env.addID(m.EventID, m.EventTime)
	e.kind = append(e.kind, m.Kind)
	e.eventType = append(e.eventType, m.EventType)
	e.emitter = append(e.emitter, m.Emitter)
	e.domain = append(e.domain, m.Domain)
	e.jobNamespace = append(e.jobNamespace, m.JobNamespace)
	e.jobName = append(e.jobName, m.JobName)
	e.jobURN = append(e.jobURN, m.JobURN)
	e.runID = append(e.runID, m.RunID)
	e.parentRunID = append(e.parentRunID, m.ParentRunID)
	e.parentJobNamespace = append(e.parentJobNamespace, m.ParentJobNamespace)
	e.parentJobName = append(e.parentJobName, m.ParentJobName)
	e.rootRunID = append(e.rootRunID, m.RootRunID)
	e.jobDescription = append(e.jobDescription, m.JobDescription)
	e.jobOwners = append(e.jobOwners, nonNil(m.JobOwners))
	e.producer = append(e.producer, m.Producer)
	e.schemaURL = append(e.schemaURL, m.SchemaURL)
	var ins, outs []string
	switch {
	case m.Run != nil:
		ins, outs = m.Run.Inputs, m.Run.Outputs
	case m.Static != nil:
		ins, outs = m.Static.Inputs, m.Static.Outputs
	}
	e.inputs = append(e.inputs, nonNil(ins))
	e.outputs = append(e.outputs, nonNil(outs))
	e.raw = append(e.raw, compact(m.Raw))

	for _, d := range m.Datasets {
		// The same facts (every run of a job sends them) once per batch.
		if d.Hash != 0 {
			if b.olFactsSeen[d.Hash] {
				continue
			}
			if b.olFactsSeen == nil {
				b.olFactsSeen = map[uint64]bool{}
			}
			b.olFactsSeen[d.Hash] = true
		}
		r := &b.olDatasets
		n := len(d.Fields)
		names, types, descs := make([]string, n), make([]string, n), make([]string, n)
		for i, f := range d.Fields {
			names[i], types[i], descs[i] = f.Name, f.Type, f.Description
		}
		r.urn = append(r.urn, d.URN)
		r.namespace = append(r.namespace, d.Namespace)
		r.name = append(r.name, d.Name)
		r.hasSchema = append(r.hasSchema, asUInt8(d.HasSchema))
		r.fieldNames = append(r.fieldNames, names)
		r.fieldTypes = append(r.fieldTypes, types)
		r.fieldDescs = append(r.fieldDescs, descs)
		r.hasOwners = append(r.hasOwners, asUInt8(d.HasOwners))
		r.owners = append(r.owners, nonNil(d.Owners))
		r.ownerTypes = append(r.ownerTypes, nonNil(d.OwnerTypes))
		r.hasDescription = append(r.hasDescription, asUInt8(d.HasDescription))
		r.description = append(r.description, d.Description)
		r.aliases = append(r.aliases, nonNil(d.Aliases))
		r.emitter = append(r.emitter, m.Emitter)
		r.env.addID(m.EventID, m.EventTime)
	}

	for _, s := range m.Stats {
		r := &b.olStats
		n := len(s.Columns)
		names, nulls, distinct, lo, hi := make([]string, n), make([]int64, n), make([]int64, n), make([]float64, n), make([]float64, n)
		for i, c := range s.Columns {
			names[i], nulls[i], distinct[i], lo[i], hi[i] = c.Name, c.NullCount, c.Distinct, orNaN(c.Min), orNaN(c.Max)
		}
		r.urn = append(r.urn, s.URN)
		r.direction = append(r.direction, s.Direction)
		r.facet = append(r.facet, s.Facet)
		r.jobURN = append(r.jobURN, m.JobURN)
		r.runID = append(r.runID, m.RunID)
		r.rows = append(r.rows, s.Rows)
		r.bytes = append(r.bytes, s.Bytes)
		r.files = append(r.files, s.Files)
		r.colNames = append(r.colNames, names)
		r.colNulls = append(r.colNulls, nulls)
		r.colDistinct = append(r.colDistinct, distinct)
		r.colMin = append(r.colMin, lo)
		r.colMax = append(r.colMax, hi)
		r.emitter = append(r.emitter, m.Emitter)
		r.env.addID(m.EventID, m.EventTime)
	}

	if st := m.Static; st != nil {
		edges := &b.lineageEdges
		for _, in := range st.Inputs {
			for _, out := range st.Outputs {
				edges.input = append(edges.input, in)
				edges.output = append(edges.output, out)
				edges.jobURN = append(edges.jobURN, st.JobURN)
				edges.runID = append(edges.runID, "")
				edges.state = append(edges.state, "STATIC") // declared by a JobEvent, not seen in a run
				edges.seen = append(edges.seen, dt(m.EventTime))
				edges.seenMs = append(edges.seenMs, m.EventTime.UnixMilli())
			}
		}
	}
}

// compact removes the insignificant white space of the raw event: 18.16's
// visitParam* functions, the way to reach a custom facet there, read only
// JSON without spaces around ':' and ','.
func compact(raw []byte) string {
	v := jsontext.Value(bytes.Clone(raw))
	if err := v.Compact(); err != nil {
		return string(raw) // validated before, so this does not happen
	}
	return string(v)
}

func asUInt8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func orNaN(f *float64) float64 {
	if f == nil {
		return math.NaN()
	}
	return *f
}

func (e *envelopeCols) addID(id string, t time.Time) {
	e.eventID = append(e.eventID, id)
	e.eventTime = append(e.eventTime, dt(t))
	e.eventTimeMs = append(e.eventTimeMs, t.UnixMilli())
}

type olEventRows struct {
	kind, eventType, emitter, domain               []string
	jobNamespace, jobName, jobURN, runID           []string
	parentRunID, parentJobNamespace, parentJobName []string
	rootRunID, jobDescription                      []string
	jobOwners                                      [][]string
	producer, schemaURL                            []string
	inputs, outputs                                [][]string
	raw                                            []string
	env                                            envelopeCols
}

func (r *olEventRows) table() string { return "openlineage_events" }
func (r *olEventRows) len() int      { return len(r.kind) }
func (r *olEventRows) columns() []string {
	return []string{"event_id", "event_time", "event_time_ms", "kind", "event_type", "emitter", "domain",
		"job_namespace", "job_name", "job_urn", "run_id", "parent_run_id", "parent_job_namespace", "parent_job_name",
		"root_run_id", "job_description", "job_owners", "producer", "schema_url", "inputs", "outputs", "raw"}
}
func (r *olEventRows) data() []any {
	return []any{r.env.eventID, r.env.eventTime, r.env.eventTimeMs, r.kind, r.eventType, r.emitter, r.domain,
		r.jobNamespace, r.jobName, r.jobURN, r.runID, r.parentRunID, r.parentJobNamespace, r.parentJobName,
		r.rootRunID, r.jobDescription, r.jobOwners, r.producer, r.schemaURL, r.inputs, r.outputs, r.raw}
}

type olDatasetRows struct {
	urn, namespace, name                 []string
	hasSchema, hasOwners, hasDescription []uint8
	fieldNames, fieldTypes, fieldDescs   [][]string
	owners, ownerTypes, aliases          [][]string
	description, emitter                 []string
	env                                  envelopeCols
}

func (r *olDatasetRows) table() string { return "openlineage_datasets" }
func (r *olDatasetRows) len() int      { return len(r.urn) }
func (r *olDatasetRows) columns() []string {
	return []string{"dataset_urn", "namespace", "name", "has_schema", "field_names", "field_types", "field_descriptions",
		"has_owners", "owners", "owner_types", "has_description", "description", "aliases", "emitter",
		"event_id", "event_time", "event_time_ms"}
}
func (r *olDatasetRows) data() []any {
	return []any{r.urn, r.namespace, r.name, r.hasSchema, r.fieldNames, r.fieldTypes, r.fieldDescs,
		r.hasOwners, r.owners, r.ownerTypes, r.hasDescription, r.description, r.aliases, r.emitter,
		r.env.eventID, r.env.eventTime, r.env.eventTimeMs}
}

type olStatsRows struct {
	urn, direction, facet, jobURN, runID []string
	rows, bytes, files                   []*int64
	colNames                             [][]string
	colNulls, colDistinct                [][]int64
	colMin, colMax                       [][]float64
	emitter                              []string
	env                                  envelopeCols
}

func (r *olStatsRows) table() string { return "dataset_statistics" }
func (r *olStatsRows) len() int      { return len(r.urn) }
func (r *olStatsRows) columns() []string {
	return []string{"dataset_urn", "direction", "facet", "job_urn", "run_id", "row_count", "bytes", "file_count",
		"column_names", "column_null_counts", "column_distinct_counts", "column_min", "column_max", "emitter",
		"event_id", "event_time", "event_time_ms"}
}
func (r *olStatsRows) data() []any {
	return []any{r.urn, r.direction, r.facet, r.jobURN, r.runID, r.rows, r.bytes, r.files,
		r.colNames, r.colNulls, r.colDistinct, r.colMin, r.colMax, r.emitter,
		r.env.eventID, r.env.eventTime, r.env.eventTimeMs}
}
