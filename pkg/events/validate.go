package events

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// FieldError is one problem with one field.
type FieldError struct {
	Field string // dotted path, e.g. outputs[0].fields[2].name
	Msg   string
	// Reason names a refusal by a bound of Limits (ReasonEventTimeWindow,
	// ReasonURNTooLong, ...); empty for a plain invalid value.
	Reason string
}

// Refusals by a bound of Limits. They travel as the dead-letter reason, so
// they are stable identifiers.
const (
	ReasonInvalidEvent    = "invalid_event"
	ReasonEventTimeWindow = "event_time_out_of_window"
	ReasonURNTooLong      = "urn_too_long"
	ReasonTextTooLong     = "text_too_long"
	ReasonListTooLong     = "list_too_long"
	ReasonTooManyEdges    = "too_many_lineage_edges"
)

// Limits bound what one event may carry, so that no single valid event can
// expand into millions of rows, break a query with a megabyte URN, or land
// in a partition decades away. DefaultLimits is what producers check and the
// ingestor enforces unless configured otherwise.
type Limits struct {
	// EventTimePast and EventTimeFuture bound event_time around now.
	EventTimePast, EventTimeFuture time.Duration
	// MaxURNBytes bounds every URN.
	MaxURNBytes int
	// MaxTextBytes bounds free text: descriptions, messages, names.
	MaxTextBytes int
	// MaxListLen bounds each list: owners, tags, outputs, inputs, the
	// fields of one output, the inputs and outputs of a run.
	MaxListLen int
	// MaxLineageEdges bounds a run's inputs × outputs and its column
	// lineage entries: each becomes a row.
	MaxLineageEdges int
}

// DefaultLimits are the documented defaults.
func DefaultLimits() Limits {
	return Limits{
		EventTimePast:   90 * 24 * time.Hour,
		EventTimeFuture: time.Hour,
		MaxURNBytes:     1024,
		MaxTextBytes:    64 << 10,
		MaxListLen:      5000,
		MaxLineageEdges: 20000,
	}
}

// Validate reports every problem with the limits themselves.
func (l Limits) Validate() error {
	var errs []string
	if l.EventTimePast <= 0 || l.EventTimeFuture <= 0 {
		errs = append(errs, "event time window bounds must be positive")
	}
	// ClickHouse refuses an insert touching more than 100 monthly partitions.
	if l.EventTimePast > 99*30*24*time.Hour {
		errs = append(errs, fmt.Sprintf("event time window of %s reaches back more than 99 months", l.EventTimePast))
	}
	if l.MaxURNBytes < 64 || l.MaxTextBytes < 256 || l.MaxListLen < 1 || l.MaxLineageEdges < 1 {
		errs = append(errs, "size limits must be at least: urn 64 bytes, text 256 bytes, lists and lineage edges 1")
	}
	if len(errs) > 0 {
		return fmt.Errorf("limits: %s", strings.Join(errs, "; "))
	}
	return nil
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// ValidationError lists every problem found in one event.
type ValidationError struct {
	Family Family
	Fields []FieldError
}

// Reason is the dead-letter reason: the first bound of Limits that was
// exceeded, or ReasonInvalidEvent.
func (e *ValidationError) Reason() string {
	for _, f := range e.Fields {
		if f.Reason != "" {
			return f.Reason
		}
	}
	return ReasonInvalidEvent
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return fmt.Sprintf("invalid %s event: %s", e.Family, strings.Join(parts, "; "))
}

// checker collects field errors.
type checker struct {
	errs []FieldError
	lim  Limits
	now  time.Time
}

func newChecker(l Limits, now time.Time) *checker { return &checker{lim: l, now: now} }

func (c *checker) fail(field, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) exceed(reason, field, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...), Reason: reason})
}

func (c *checker) nonEmpty(field, v string) {
	if strings.TrimSpace(v) == "" {
		c.fail(field, "must not be empty")
	}
	c.text(field, v)
}

// text bounds a free-text field.
func (c *checker) text(field, v string) {
	if len(v) > c.lim.MaxTextBytes {
		c.exceed(ReasonTextTooLong, field, "is %d bytes, more than the limit of %d", len(v), c.lim.MaxTextBytes)
	}
}

// list bounds a list's length; it reports whether the list is within bounds
// (its items are only checked then, so one huge list costs one error).
func (c *checker) list(field string, n int) bool {
	if n > c.lim.MaxListLen {
		c.exceed(ReasonListTooLong, field, "has %d entries, more than the limit of %d", n, c.lim.MaxListLen)
		return false
	}
	return true
}

func (c *checker) oneOf(field, v string, allowed []string) {
	if !slices.Contains(allowed, v) {
		c.fail(field, "%q is not one of %s", v, strings.Join(quoted(allowed), ", "))
	}
}

func (c *checker) urn(field, v, kind string) URN {
	if len(v) > c.lim.MaxURNBytes {
		c.exceed(ReasonURNTooLong, field, "urn is %d bytes, more than the limit of %d", len(v), c.lim.MaxURNBytes)
		return URN{}
	}
	u, err := ParseURNOfKind(v, kind)
	if err != nil {
		c.fail(field, "%v", err)
	}
	return u
}

func (c *checker) nonNegative(field string, v int64) {
	if v < 0 {
		c.fail(field, "must not be negative, got %d", v)
	}
}

func (c *checker) envelope(e *Envelope) {
	if _, err := uuid.Parse(e.EventID); err != nil {
		c.fail("event_id", "must be a UUID, got %q", e.EventID)
	}
	// Outside the window is a clock or unit bug (seconds sent as
	// milliseconds) or a backfill the ingestor is not configured for.
	if from, to := c.now.Add(-c.lim.EventTimePast), c.now.Add(c.lim.EventTimeFuture); e.EventTime.Before(from) || e.EventTime.After(to) {
		c.exceed(ReasonEventTimeWindow, "event_time", "%s is outside the accepted window [now-%s, now+%s]",
			e.EventTime.UTC().Format(time.RFC3339), human(c.lim.EventTimePast), human(c.lim.EventTimeFuture))
	}
	if !ValidDomain(e.Emitter) {
		c.fail("emitter", "%q must be a domain name or %q", e.Emitter, PlatformEmitter)
	}
}

func (c *checker) done(f Family) error {
	if len(c.errs) == 0 {
		return nil
	}
	return &ValidationError{Family: f, Fields: c.errs}
}

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// Validate implements Event, with DefaultLimits at the current time.
func (e *ProductMetadata) Validate() error { return e.ValidateWith(DefaultLimits(), time.Now()) }

// ValidateWith checks the event against limits at time now.
func (e *ProductMetadata) ValidateWith(l Limits, now time.Time) error {
	c := newChecker(l, now)
	c.envelope(&e.Envelope)
	u := c.urn("product_urn", e.ProductURN, KindProduct)
	if !ValidDomain(e.Domain) {
		c.fail("domain", "%q must be lower-case letters, digits and dashes", e.Domain)
	} else if u.Scope != "" && u.Scope != e.Domain {
		c.fail("domain", "%q does not match the product urn's domain %q", e.Domain, u.Scope)
	}
	if e.Domain == PlatformEmitter {
		c.fail("domain", "%q is reserved for shared tooling and owns no products", PlatformEmitter)
	}
	c.nonEmpty("name", e.Name)
	c.text("description", e.Description)
	c.text("documentation_url", e.DocumentationURL)
	c.text("access_notes", e.AccessNotes)
	c.oneOf("lifecycle", e.Lifecycle, Lifecycles)
	if c.list("owners", len(e.Owners)) {
		for i, o := range e.Owners {
			c.text(fmt.Sprintf("owners[%d]", i), o)
		}
	}
	if c.list("tags", len(e.Tags)) {
		for i, t := range e.Tags {
			c.text(fmt.Sprintf("tags[%d]", i), t)
		}
	}
	seen := map[string]bool{}
	if c.list("outputs", len(e.Outputs)) {
		for i, o := range e.Outputs {
			p := fmt.Sprintf("outputs[%d]", i)
			c.urn(p+".dataset_urn", o.DatasetURN, KindDataset)
			if seen[o.DatasetURN] {
				c.fail(p+".dataset_urn", "%q is declared twice", o.DatasetURN)
			}
			seen[o.DatasetURN] = true
			c.text(p+".description", o.Description)
			c.text(p+".schema_ref", o.SchemaRef)
			if !c.list(p+".fields", len(o.Fields)) {
				continue
			}
			for j, f := range o.Fields {
				fp := fmt.Sprintf("%s.fields[%d]", p, j)
				c.nonEmpty(fp+".name", f.Name)
				c.nonEmpty(fp+".type", f.Type)
				c.text(fp+".description", f.Description)
				c.oneOf(fp+".classification", f.Classification, Classifications)
			}
		}
	}
	if c.list("inputs", len(e.Inputs)) {
		for i, in := range e.Inputs {
			c.urn(fmt.Sprintf("inputs[%d]", i), in, KindDataset)
		}
	}
	if e.SLO != nil {
		if f := e.SLO.FreshnessSeconds; f != nil && *f <= 0 {
			c.fail("slo.freshness_seconds", "must be positive, got %d", *f)
		}
		if r := e.SLO.MinQualityPassRate; r != nil && (*r < 0 || *r > 1) {
			c.fail("slo.min_quality_pass_rate", "must be within [0, 1], got %g", *r)
		}
	}
	return c.done(FamilyMetadata)
}

// Validate implements Event, with DefaultLimits at the current time.
func (e *LineageRun) Validate() error { return e.ValidateWith(DefaultLimits(), time.Now()) }

// ValidateWith checks the event against limits at time now.
func (e *LineageRun) ValidateWith(l Limits, now time.Time) error {
	c := newChecker(l, now)
	c.envelope(&e.Envelope)
	c.urn("job_urn", e.JobURN, KindJob)
	c.nonEmpty("run_id", e.RunID)
	c.oneOf("state", e.State, RunStates)
	c.text("producer", e.Producer)
	c.text("error_message", e.ErrorMessage)
	ins, outs := c.list("inputs", len(e.Inputs)), c.list("outputs", len(e.Outputs))
	if ins && outs && len(e.Inputs)*len(e.Outputs) > l.MaxLineageEdges {
		c.exceed(ReasonTooManyEdges, "inputs", "%d inputs × %d outputs make %d lineage edges, more than the limit of %d",
			len(e.Inputs), len(e.Outputs), len(e.Inputs)*len(e.Outputs), l.MaxLineageEdges)
	}
	if ins {
		for i, in := range e.Inputs {
			c.urn(fmt.Sprintf("inputs[%d]", i), in, KindDataset)
		}
	}
	if outs {
		for i, out := range e.Outputs {
			c.urn(fmt.Sprintf("outputs[%d]", i), out, KindDataset)
		}
	}
	if len(e.ColumnLineage) > l.MaxLineageEdges {
		c.exceed(ReasonTooManyEdges, "column_lineage", "has %d entries, more than the limit of %d", len(e.ColumnLineage), l.MaxLineageEdges)
	} else {
		for i, cl := range e.ColumnLineage {
			p := fmt.Sprintf("column_lineage[%d]", i)
			c.urn(p+".output_dataset", cl.OutputDataset, KindDataset)
			c.urn(p+".input_dataset", cl.InputDataset, KindDataset)
			c.nonEmpty(p+".output_field", cl.OutputField)
			c.nonEmpty(p+".input_field", cl.InputField)
			c.text(p+".transformation", cl.Transformation)
		}
	}
	if e.RowsWritten != nil {
		c.nonNegative("rows_written", *e.RowsWritten)
	}
	if e.BytesWritten != nil {
		c.nonNegative("bytes_written", *e.BytesWritten)
	}
	return c.done(FamilyLineage)
}

// Validate implements Event, with DefaultLimits at the current time.
func (e *UsageEvent) Validate() error { return e.ValidateWith(DefaultLimits(), time.Now()) }

// ValidateWith checks the event against limits at time now.
func (e *UsageEvent) ValidateWith(l Limits, now time.Time) error {
	c := newChecker(l, now)
	c.envelope(&e.Envelope)
	c.urn("dataset_urn", e.DatasetURN, KindDataset)
	c.nonEmpty("consumer.user", e.Consumer.User)
	c.text("consumer.team", e.Consumer.Team)
	c.text("consumer.tool", e.Consumer.Tool)
	if e.Consumer.Domain != "" && !ValidDomain(e.Consumer.Domain) {
		c.fail("consumer.domain", "%q must be a domain name or empty", e.Consumer.Domain)
	}
	c.oneOf("access_kind", e.AccessKind, AccessKinds)
	c.nonNegative("rows_read", e.RowsRead)
	c.nonNegative("duration_ms", e.DurationMs)
	return c.done(FamilyUsage)
}

// Validate implements Event, with DefaultLimits at the current time.
func (e *QualityResult) Validate() error { return e.ValidateWith(DefaultLimits(), time.Now()) }

// ValidateWith checks the event against limits at time now.
func (e *QualityResult) ValidateWith(l Limits, now time.Time) error {
	c := newChecker(l, now)
	c.envelope(&e.Envelope)
	c.urn("dataset_urn", e.DatasetURN, KindDataset)
	c.nonEmpty("check_name", e.CheckName)
	c.oneOf("check_type", e.CheckType, CheckTypes)
	c.oneOf("status", e.Status, CheckStatuses)
	c.oneOf("severity", e.Severity, Severities)
	c.text("message", e.Message)
	return c.done(FamilyQuality)
}

// Validate implements Event, with DefaultLimits at the current time.
func (e *ScoreChanged) Validate() error { return e.ValidateWith(DefaultLimits(), time.Now()) }

// ValidateWith checks the event against limits at time now.
func (e *ScoreChanged) ValidateWith(l Limits, now time.Time) error {
	c := newChecker(l, now)
	c.envelope(&e.Envelope)
	c.urn("product_urn", e.ProductURN, KindProduct)
	for name, v := range map[string]*float64{"new_health": e.NewHealth, "new_trust": e.NewTrust} {
		if v != nil && (*v < 0 || *v > 100) {
			c.fail(name, "must be within [0, 100], got %g", *v)
		}
	}
	if (e.NewHealth == nil) != (e.NewHealthBand == "unknown") {
		c.fail("new_health", "is null exactly when new_health_band is unknown")
	}
	c.oneOf("new_health_band", e.NewHealthBand, Bands)
	c.oneOf("new_trust_band", e.NewTrustBand, Bands)
	return c.done(FamilyScores)
}

// human renders a window bound: 90d, 1h, 30m.
func human(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}
