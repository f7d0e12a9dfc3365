package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// Batch holds normalised rows for every table, column by column, ready for
// the native protocol's columnar append. A Batch is filled by one goroutine;
// several Batches are sent together by Writer.Insert.
type Batch struct {
	products     productRows
	datasets     datasetRows
	claims       claimRows
	lineageRuns  lineageRunRows
	lineageEdges lineageEdgeRows
	datasetRuns  datasetRunRows
	usage        usageRows
	quality      qualityRows
	olEvents     olEventRows
	olDatasets   olDatasetRows
	olStats      olStatsRows
	olFactsSeen  map[uint64]bool // OpenLineage dataset facts already in this batch
	// selected, when set, are the batch's rows instead of the fields above:
	// rows copied out of other batches by Select.
	selected []tableRows
}

// Len is the number of rows across all tables.
func (b *Batch) Len() int {
	if b.selected != nil {
		n := 0
		for _, t := range b.selected {
			n += t.len()
		}
		return n
	}
	return len(b.products.urn) + len(b.datasets.urn) + len(b.claims.dataset) + len(b.lineageRuns.jobURN) +
		len(b.lineageEdges.input) + len(b.datasetRuns.dataset) + len(b.usage.eventID) + len(b.quality.eventID) +
		b.olEvents.len() + b.olDatasets.len() + b.olStats.len()
}

// TableLen is the number of rows for one table (by its name).
func (b *Batch) TableLen(table string) int {
	for _, t := range b.tables() {
		if t.table() == table {
			return t.len()
		}
	}
	return 0
}

// What a batch touched, for the change feed.
const (
	TouchedQuality  = iota // datasets with new quality results
	TouchedUsage           // datasets with new reads
	TouchedRuns            // datasets with new run states (the runs' outputs)
	TouchedLineage         // datasets with new lineage edges into them
	TouchedProducts        // products with a new declaration
)

// Touched lists, without repeats, the URNs the batch's rows are about.
func (b *Batch) Touched(kind int) []string {
	seen := map[string]bool{}
	var out []string
	add := func(urns ...string) {
		for _, u := range urns {
			if !seen[u] {
				seen[u] = true
				out = append(out, u)
			}
		}
	}
	switch kind {
	case TouchedQuality:
		add(b.quality.datasetURN...)
	case TouchedUsage:
		add(b.usage.datasetURN...)
	case TouchedRuns:
		add(b.datasetRuns.dataset...)
	case TouchedLineage:
		add(b.lineageEdges.output...)
	case TouchedProducts:
		add(b.products.urn...)
	}
	return out
}

// tables lists each table with its rows, in insert order.
func (b *Batch) tables() []tableRows {
	if b.selected != nil {
		return b.selected
	}
	return []tableRows{&b.products, &b.datasets, &b.claims, &b.lineageRuns, &b.lineageEdges, &b.datasetRuns, &b.usage, &b.quality,
		&b.olEvents, &b.olDatasets, &b.olStats}
}

// numTables is how many tables a batch writes.
const numTables = 11

// Mark is a batch's row count per table. The marks taken before and after
// adding one record delimit that record's rows, so that they can be copied
// out alone (Select) without keeping the record or its decoded event.
type Mark [numTables]int32

// Mark returns the batch's row count per table now. It is taken twice per
// record, so it reads the counts without building the table list.
func (b *Batch) Mark() Mark {
	if b.selected != nil {
		var m Mark
		for k, t := range b.selected {
			m[k] = int32(t.len())
		}
		return m
	}
	return Mark{int32(len(b.products.urn)), int32(len(b.datasets.urn)), int32(len(b.claims.dataset)),
		int32(len(b.lineageRuns.jobURN)), int32(len(b.lineageEdges.input)), int32(len(b.datasetRuns.dataset)),
		int32(len(b.usage.eventID)), int32(len(b.quality.eventID)), int32(b.olEvents.len()), int32(b.olDatasets.len()),
		int32(b.olStats.len())}
}

// Span is the rows of Part between two of its marks.
type Span struct {
	Part     *Batch
	From, To Mark
}

// Select copies the rows of the spans into a new batch, in span order: the
// rows of some records, to insert them without the others. Dataset facts
// that OpenLineage events share are written once per batch, by the first
// record that carried them; a selection without that record lacks them
// (they come again with the dataset's next event).
func Select(spans []Span) *Batch {
	if len(spans) == 0 {
		return &Batch{}
	}
	proto := spans[0].Part.tables()
	out := &Batch{selected: make([]tableRows, len(proto))}
	for t, first := range proto {
		sel := &selectedRows{name: first.table(), cols: first.columns()}
		for k, col := range first.data() {
			acc := reflect.MakeSlice(reflect.TypeOf(col), 0, 0)
			for _, sp := range spans {
				src := reflect.ValueOf(sp.Part.tables()[t].data()[k])
				acc = reflect.AppendSlice(acc, src.Slice(int(sp.From[t]), int(sp.To[t])))
			}
			sel.values = append(sel.values, acc.Interface())
			sel.n = acc.Len()
		}
		out.selected[t] = sel
	}
	return out
}

// selectedRows is one table's rows copied by Select.
type selectedRows struct {
	name   string
	cols   []string
	values []any
	n      int
}

func (r *selectedRows) table() string     { return r.name }
func (r *selectedRows) columns() []string { return r.cols }
func (r *selectedRows) data() []any       { return r.values }
func (r *selectedRows) len() int          { return r.n }

// tableRows is one table's columns.
type tableRows interface {
	table() string
	columns() []string
	data() []any // one typed slice per column, in columns() order
	len() int
}

func dt(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// AddMetadata normalises a product declaration into products, the
// declarations of its output datasets and its claims on them.
func (b *Batch) AddMetadata(ev *events.ProductMetadata) {
	p := &b.products
	var outs []string
	for _, o := range ev.Outputs {
		outs = append(outs, o.DatasetURN)
	}
	var fresh *int64
	var minPass *float64
	if ev.SLO != nil {
		fresh, minPass = ev.SLO.FreshnessSeconds, ev.SLO.MinQualityPassRate
	}
	p.urn = append(p.urn, ev.ProductURN)
	p.domain = append(p.domain, ev.Domain)
	p.name = append(p.name, ev.Name)
	p.description = append(p.description, ev.Description)
	p.owners = append(p.owners, nonNil(ev.Owners))
	p.tags = append(p.tags, nonNil(ev.Tags))
	p.lifecycle = append(p.lifecycle, ev.Lifecycle)
	p.docURL = append(p.docURL, ev.DocumentationURL)
	p.accessNotes = append(p.accessNotes, ev.AccessNotes)
	p.outputs = append(p.outputs, nonNil(outs))
	p.inputs = append(p.inputs, nonNil(ev.Inputs))
	p.freshness = append(p.freshness, fresh)
	p.minPass = append(p.minPass, minPass)
	p.env.add(&ev.Envelope)

	d := &b.datasets
	for _, o := range ev.Outputs {
		u, _ := events.ParseURN(o.DatasetURN)
		n := len(o.Fields)
		names, types, descs, classes, pii := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]uint8, n)
		for i, f := range o.Fields {
			names[i], types[i], descs[i], classes[i] = f.Name, f.Type, f.Description, f.Classification
			if f.PII {
				pii[i] = 1
			}
		}
		d.urn = append(d.urn, o.DatasetURN)
		d.productURN = append(d.productURN, ev.ProductURN)
		d.domain = append(d.domain, ev.Domain)
		d.platform = append(d.platform, u.Scope)
		d.description = append(d.description, o.Description)
		d.schemaRef = append(d.schemaRef, o.SchemaRef)
		d.fieldNames = append(d.fieldNames, names)
		d.fieldTypes = append(d.fieldTypes, types)
		d.fieldDescs = append(d.fieldDescs, descs)
		d.fieldClasses = append(d.fieldClasses, classes)
		d.fieldPII = append(d.fieldPII, pii)
		d.env.add(&ev.Envelope)
		b.claims.add(ClaimOf(ev, o.DatasetURN))
	}
}

// Claim is a product's claim on a dataset: its declaration as an output.
type Claim struct {
	Dataset, Domain, Product string
	AtMs                     int64 // event time of the declaration
	EventID                  string
}

// ClaimOf is the claim a declaration makes on one of its outputs.
func ClaimOf(ev *events.ProductMetadata, dataset string) Claim {
	return Claim{Dataset: dataset, Domain: ev.Domain, Product: ev.ProductURN, AtMs: ev.EventTime.UnixMilli(), EventID: ev.EventID}
}

// Before orders claims on a dataset: the earlier declaration wins, then
// the smaller event id, so every replica resolves a conflict alike.
func (c Claim) Before(o Claim) bool {
	if c.AtMs != o.AtMs {
		return c.AtMs < o.AtMs
	}
	return c.EventID < o.EventID
}

// AddLineage normalises a run event into lineage_runs and lineage_edges.
func (b *Batch) AddLineage(ev *events.LineageRun) {
	r := &b.lineageRuns
	u, _ := events.ParseURN(ev.JobURN)
	n := len(ev.ColumnLineage)
	od, of, id, inf, tr := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, c := range ev.ColumnLineage {
		od[i], of[i], id[i], inf[i], tr[i] = c.OutputDataset, c.OutputField, c.InputDataset, c.InputField, c.Transformation
	}
	r.jobURN = append(r.jobURN, ev.JobURN)
	r.namespace = append(r.namespace, u.Scope)
	r.runID = append(r.runID, ev.RunID)
	r.state = append(r.state, ev.State)
	r.producer = append(r.producer, ev.Producer)
	r.emitter = append(r.emitter, ev.Emitter)
	r.inputs = append(r.inputs, nonNil(ev.Inputs))
	r.outputs = append(r.outputs, nonNil(ev.Outputs))
	r.colOutDS = append(r.colOutDS, od)
	r.colOutField = append(r.colOutField, of)
	r.colInDS = append(r.colInDS, id)
	r.colInField = append(r.colInField, inf)
	r.colTransform = append(r.colTransform, tr)
	r.rows = append(r.rows, ev.RowsWritten)
	r.bytes = append(r.bytes, ev.BytesWritten)
	r.errMsg = append(r.errMsg, ev.ErrorMessage)
	r.eventID = append(r.eventID, ev.EventID)
	r.eventTime = append(r.eventTime, dt(ev.EventTime))
	r.eventTimeMs = append(r.eventTimeMs, ev.EventTime.UnixMilli())

	dr := &b.datasetRuns
	for _, out := range ev.Outputs {
		dr.dataset = append(dr.dataset, out)
		dr.eventTime = append(dr.eventTime, dt(ev.EventTime))
		dr.eventTimeMs = append(dr.eventTimeMs, ev.EventTime.UnixMilli())
		dr.jobURN = append(dr.jobURN, ev.JobURN)
		dr.runID = append(dr.runID, ev.RunID)
		dr.state = append(dr.state, ev.State)
		dr.eventID = append(dr.eventID, ev.EventID)
	}

	e := &b.lineageEdges
	for _, in := range ev.Inputs {
		for _, out := range ev.Outputs {
			e.input = append(e.input, in)
			e.output = append(e.output, out)
			e.jobURN = append(e.jobURN, ev.JobURN)
			e.runID = append(e.runID, ev.RunID)
			e.state = append(e.state, ev.State)
			e.seen = append(e.seen, dt(ev.EventTime))
			e.seenMs = append(e.seenMs, ev.EventTime.UnixMilli())
		}
	}
}

// AddUsage normalises a usage event; owner is the dataset's owning domain
// ("" when no product declares it).
func (b *Batch) AddUsage(ev *events.UsageEvent, owner string) {
	u := &b.usage
	u.eventID = append(u.eventID, ev.EventID)
	u.eventTime = append(u.eventTime, dt(ev.EventTime))
	u.eventTimeMs = append(u.eventTimeMs, ev.EventTime.UnixMilli())
	u.emitter = append(u.emitter, ev.Emitter)
	u.datasetURN = append(u.datasetURN, ev.DatasetURN)
	u.owner = append(u.owner, owner)
	u.user = append(u.user, ev.Consumer.User)
	u.team = append(u.team, ev.Consumer.Team)
	u.consumerDomain = append(u.consumerDomain, ev.Consumer.Domain)
	u.tool = append(u.tool, ev.Consumer.Tool)
	u.accessKind = append(u.accessKind, ev.AccessKind)
	u.rowsRead = append(u.rowsRead, ev.RowsRead)
	u.durationMs = append(u.durationMs, ev.DurationMs)
}

// AddQuality normalises a check result; owner as for AddUsage.
func (b *Batch) AddQuality(ev *events.QualityResult, owner string) {
	q := &b.quality
	q.eventID = append(q.eventID, ev.EventID)
	q.eventTime = append(q.eventTime, dt(ev.EventTime))
	q.eventTimeMs = append(q.eventTimeMs, ev.EventTime.UnixMilli())
	q.emitter = append(q.emitter, ev.Emitter)
	q.datasetURN = append(q.datasetURN, ev.DatasetURN)
	q.owner = append(q.owner, owner)
	q.checkName = append(q.checkName, ev.CheckName)
	q.checkType = append(q.checkType, ev.CheckType)
	q.status = append(q.status, ev.Status)
	q.severity = append(q.severity, ev.Severity)
	q.observed = append(q.observed, ev.ObservedValue)
	q.threshold = append(q.threshold, ev.Threshold)
	q.message = append(q.message, ev.Message)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// envelopeCols are the event identity columns of the state tables.
type envelopeCols struct {
	eventID     []string
	eventTime   []time.Time
	eventTimeMs []int64
}

func (e *envelopeCols) add(env *events.Envelope) {
	e.eventID = append(e.eventID, env.EventID)
	e.eventTime = append(e.eventTime, dt(env.EventTime))
	e.eventTimeMs = append(e.eventTimeMs, env.EventTime.UnixMilli())
}

type productRows struct {
	urn, domain, name, description []string
	owners, tags                   [][]string
	lifecycle, docURL, accessNotes []string
	outputs, inputs                [][]string
	freshness                      []*int64
	minPass                        []*float64
	emitter                        []string
	env                            envelopeCols
}

func (r *productRows) table() string { return "products" }
func (r *productRows) len() int      { return len(r.urn) }
func (r *productRows) columns() []string {
	return []string{"product_urn", "domain", "name", "description", "owners", "tags", "lifecycle",
		"documentation_url", "access_notes", "output_datasets", "input_datasets", "freshness_slo_seconds",
		"min_quality_pass_rate", "emitter", "event_id", "event_time", "event_time_ms"}
}
func (r *productRows) data() []any {
	// The emitter of a metadata event is its domain (ownership guarantees it).
	return []any{r.urn, r.domain, r.name, r.description, r.owners, r.tags, r.lifecycle, r.docURL,
		r.accessNotes, r.outputs, r.inputs, r.freshness, r.minPass, r.domain, r.env.eventID,
		r.env.eventTime, r.env.eventTimeMs}
}

type datasetRows struct {
	urn, productURN, domain, platform, description, schemaRef []string
	fieldNames, fieldTypes, fieldDescs, fieldClasses          [][]string
	fieldPII                                                  [][]uint8
	env                                                       envelopeCols
}

func (r *datasetRows) table() string { return "dataset_declarations" }
func (r *datasetRows) len() int      { return len(r.urn) }
func (r *datasetRows) columns() []string {
	return []string{"dataset_urn", "product_urn", "domain", "platform", "description", "schema_ref",
		"field_names", "field_types", "field_descriptions", "field_classifications", "field_pii",
		"event_id", "event_time", "event_time_ms"}
}
func (r *datasetRows) data() []any {
	return []any{r.urn, r.productURN, r.domain, r.platform, r.description, r.schemaRef, r.fieldNames,
		r.fieldTypes, r.fieldDescs, r.fieldClasses, r.fieldPII, r.env.eventID, r.env.eventTime, r.env.eventTimeMs}
}

type claimRows struct {
	dataset, domain, product, eventID []string
	at                                []time.Time
	atMs                              []int64
}

func (r *claimRows) add(c Claim) {
	r.dataset = append(r.dataset, c.Dataset)
	r.domain = append(r.domain, c.Domain)
	r.product = append(r.product, c.Product)
	r.at = append(r.at, dt(time.UnixMilli(c.AtMs)))
	r.atMs = append(r.atMs, c.AtMs)
	r.eventID = append(r.eventID, c.EventID)
}

func (r *claimRows) table() string { return "dataset_claims" }
func (r *claimRows) len() int      { return len(r.dataset) }
func (r *claimRows) columns() []string {
	return []string{"dataset_urn", "domain", "product_urn", "claimed_at", "claimed_at_ms", "event_id"}
}
func (r *claimRows) data() []any {
	return []any{r.dataset, r.domain, r.product, r.at, r.atMs, r.eventID}
}

type lineageRunRows struct {
	jobURN, namespace, runID, state, producer, emitter       []string
	inputs, outputs                                          [][]string
	colOutDS, colOutField, colInDS, colInField, colTransform [][]string
	rows, bytes                                              []*int64
	errMsg, eventID                                          []string
	eventTime                                                []time.Time
	eventTimeMs                                              []int64
}

func (r *lineageRunRows) table() string { return "lineage_runs" }
func (r *lineageRunRows) len() int      { return len(r.jobURN) }
func (r *lineageRunRows) columns() []string {
	return []string{"job_urn", "job_namespace", "run_id", "state", "producer", "emitter", "inputs", "outputs",
		"column_output_datasets", "column_output_fields", "column_input_datasets", "column_input_fields",
		"column_transformations", "rows_written", "bytes_written", "error_message", "event_id", "event_time", "event_time_ms"}
}
func (r *lineageRunRows) data() []any {
	return []any{r.jobURN, r.namespace, r.runID, r.state, r.producer, r.emitter, r.inputs, r.outputs,
		r.colOutDS, r.colOutField, r.colInDS, r.colInField, r.colTransform, r.rows, r.bytes, r.errMsg,
		r.eventID, r.eventTime, r.eventTimeMs}
}

type lineageEdgeRows struct {
	input, output, jobURN, runID, state []string
	seen                                []time.Time
	seenMs                              []int64
}

func (r *lineageEdgeRows) table() string { return "lineage_edges" }
func (r *lineageEdgeRows) len() int      { return len(r.input) }
func (r *lineageEdgeRows) columns() []string {
	return []string{"input_dataset", "output_dataset", "job_urn", "last_run_id", "last_state", "last_seen", "last_seen_ms"}
}
func (r *lineageEdgeRows) data() []any {
	return []any{r.input, r.output, r.jobURN, r.runID, r.state, r.seen, r.seenMs}
}

type datasetRunRows struct {
	dataset, jobURN, runID, state, eventID []string
	eventTime                              []time.Time
	eventTimeMs                            []int64
}

func (r *datasetRunRows) table() string { return "dataset_runs" }
func (r *datasetRunRows) len() int      { return len(r.dataset) }
func (r *datasetRunRows) columns() []string {
	return []string{"dataset_urn", "event_time", "event_time_ms", "job_urn", "run_id", "state", "event_id"}
}
func (r *datasetRunRows) data() []any {
	return []any{r.dataset, r.eventTime, r.eventTimeMs, r.jobURN, r.runID, r.state, r.eventID}
}

type usageRows struct {
	eventID                                      []string
	eventTime                                    []time.Time
	eventTimeMs                                  []int64
	emitter, datasetURN, owner                   []string
	user, team, consumerDomain, tool, accessKind []string
	rowsRead, durationMs                         []int64
}

func (r *usageRows) table() string { return "usage_events" }
func (r *usageRows) len() int      { return len(r.eventID) }
func (r *usageRows) columns() []string {
	return []string{"event_id", "event_time", "event_time_ms", "emitter", "dataset_urn", "owner_domain",
		"consumer_user", "consumer_team", "consumer_domain", "consumer_tool", "access_kind", "rows_read", "duration_ms"}
}
func (r *usageRows) data() []any {
	return []any{r.eventID, r.eventTime, r.eventTimeMs, r.emitter, r.datasetURN, r.owner, r.user, r.team,
		r.consumerDomain, r.tool, r.accessKind, r.rowsRead, r.durationMs}
}

type qualityRows struct {
	eventID                                                            []string
	eventTime                                                          []time.Time
	eventTimeMs                                                        []int64
	emitter, datasetURN, owner, checkName, checkType, status, severity []string
	observed, threshold                                                []*float64
	message                                                            []string
}

func (r *qualityRows) table() string { return "quality_results" }
func (r *qualityRows) len() int      { return len(r.eventID) }
func (r *qualityRows) columns() []string {
	return []string{"event_id", "event_time", "event_time_ms", "emitter", "dataset_urn", "owner_domain",
		"check_name", "check_type", "status", "severity", "observed_value", "threshold", "message"}
}
func (r *qualityRows) data() []any {
	return []any{r.eventID, r.eventTime, r.eventTimeMs, r.emitter, r.datasetURN, r.owner, r.checkName,
		r.checkType, r.status, r.severity, r.observed, r.threshold, r.message}
}

// ErrAppend marks a value the client could not put into its column: a data
// error of the rows, not an outage.
var ErrAppend = errors.New("append to column")

// Writer inserts batches into one database.
type Writer struct {
	conn driver.Conn
	db   string
}

// NewWriter returns a Writer for db.
func NewWriter(conn driver.Conn, db string) *Writer { return &Writer{conn: conn, db: db} }

// Insert sends the rows of all parts, one INSERT per table with an explicit
// column list and columnar appends. It is safe to call again with the same
// parts after a failure: the tables deduplicate replayed rows.
func (w *Writer) Insert(ctx context.Context, parts []*Batch) error {
	if len(parts) == 0 {
		return nil
	}
	for t := range parts[0].tables() {
		var n int
		for _, p := range parts {
			n += p.tables()[t].len()
		}
		if n == 0 {
			continue
		}
		if err := w.insertTable(ctx, parts, t, n); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) insertTable(ctx context.Context, parts []*Batch, t, n int) (err error) {
	first := parts[0].tables()[t]
	query := fmt.Sprintf("INSERT INTO %s.%s (%s)", w.db, first.table(), strings.Join(first.columns(), ", "))
	batch, err := w.conn.PrepareBatch(ctx, query)
	if err != nil {
		return fmt.Errorf("prepare insert of %d %s rows: %w", n, first.table(), err)
	}
	defer func() {
		if err != nil {
			_ = batch.Abort()
		}
	}()
	for _, p := range parts {
		rows := p.tables()[t]
		if rows.len() == 0 {
			continue
		}
		for i, col := range rows.data() {
			if err := batch.Column(i).Append(col); err != nil {
				return fmt.Errorf("%w %s.%s: %w", ErrAppend, rows.table(), rows.columns()[i], err)
			}
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %d %s rows: %w", n, first.table(), err)
	}
	return nil
}

// QueryOwners resolves the owner of every claimed dataset: its earliest
// claim (event time, then event id), as the view dataset_owners does.
const QueryOwners = `SELECT dataset_urn, domain, product_urn, claimed_at_ms, event_id FROM {db}.dataset_claims
ORDER BY dataset_urn, claimed_at_ms, event_id LIMIT 1 BY dataset_urn`

// DatasetOwners reads the resolved owner of every claimed dataset, for the
// ingestor's ownership checks.
func (w *Writer) DatasetOwners(ctx context.Context) (map[string]Claim, error) {
	rows, err := w.conn.Query(ctx, strings.ReplaceAll(QueryOwners, "{db}", w.db))
	if err != nil {
		return nil, fmt.Errorf("read dataset owners: %w", err)
	}
	defer rows.Close()
	out := map[string]Claim{}
	for rows.Next() {
		var c Claim
		if err := rows.Scan(&c.Dataset, &c.Domain, &c.Product, &c.AtMs, &c.EventID); err != nil {
			return nil, err
		}
		out[c.Dataset] = c
	}
	return out, rows.Err()
}
