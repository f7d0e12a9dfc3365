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
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// ValidationError lists every problem found in one event.
type ValidationError struct {
	Family Family
	Fields []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return fmt.Sprintf("invalid %s event: %s", e.Family, strings.Join(parts, "; "))
}

// checker collects field errors.
type checker struct{ errs []FieldError }

func (c *checker) fail(field, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) nonEmpty(field, v string) {
	if strings.TrimSpace(v) == "" {
		c.fail(field, "must not be empty")
	}
}

func (c *checker) oneOf(field, v string, allowed []string) {
	if !slices.Contains(allowed, v) {
		c.fail(field, "%q is not one of %s", v, strings.Join(quoted(allowed), ", "))
	}
}

func (c *checker) urn(field, v, kind string) URN {
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

// oldest and newest bound event_time: anything outside is a clock or unit
// bug (seconds sent as milliseconds) rather than a fact worth storing.
var (
	oldestEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxClockSkew    = 24 * time.Hour
)

func (c *checker) envelope(e *Envelope) {
	if _, err := uuid.Parse(e.EventID); err != nil {
		c.fail("event_id", "must be a UUID, got %q", e.EventID)
	}
	if e.EventTime.Before(oldestEventTime) || e.EventTime.After(time.Now().Add(maxClockSkew)) {
		c.fail("event_time", "%s is outside [2000-01-01, now+24h]", e.EventTime.UTC().Format(time.RFC3339))
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

// Validate implements Event.
func (e *ProductMetadata) Validate() error {
	var c checker
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
	c.oneOf("lifecycle", e.Lifecycle, Lifecycles)
	seen := map[string]bool{}
	for i, o := range e.Outputs {
		p := fmt.Sprintf("outputs[%d]", i)
		c.urn(p+".dataset_urn", o.DatasetURN, KindDataset)
		if seen[o.DatasetURN] {
			c.fail(p+".dataset_urn", "%q is declared twice", o.DatasetURN)
		}
		seen[o.DatasetURN] = true
		for j, f := range o.Fields {
			fp := fmt.Sprintf("%s.fields[%d]", p, j)
			c.nonEmpty(fp+".name", f.Name)
			c.nonEmpty(fp+".type", f.Type)
			c.oneOf(fp+".classification", f.Classification, Classifications)
		}
	}
	for i, in := range e.Inputs {
		c.urn(fmt.Sprintf("inputs[%d]", i), in, KindDataset)
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

// Validate implements Event.
func (e *LineageRun) Validate() error {
	var c checker
	c.envelope(&e.Envelope)
	c.urn("job_urn", e.JobURN, KindJob)
	c.nonEmpty("run_id", e.RunID)
	c.oneOf("state", e.State, RunStates)
	for i, in := range e.Inputs {
		c.urn(fmt.Sprintf("inputs[%d]", i), in, KindDataset)
	}
	for i, out := range e.Outputs {
		c.urn(fmt.Sprintf("outputs[%d]", i), out, KindDataset)
	}
	for i, cl := range e.ColumnLineage {
		p := fmt.Sprintf("column_lineage[%d]", i)
		c.urn(p+".output_dataset", cl.OutputDataset, KindDataset)
		c.urn(p+".input_dataset", cl.InputDataset, KindDataset)
		c.nonEmpty(p+".output_field", cl.OutputField)
		c.nonEmpty(p+".input_field", cl.InputField)
	}
	if e.RowsWritten != nil {
		c.nonNegative("rows_written", *e.RowsWritten)
	}
	if e.BytesWritten != nil {
		c.nonNegative("bytes_written", *e.BytesWritten)
	}
	return c.done(FamilyLineage)
}

// Validate implements Event.
func (e *UsageEvent) Validate() error {
	var c checker
	c.envelope(&e.Envelope)
	c.urn("dataset_urn", e.DatasetURN, KindDataset)
	c.nonEmpty("consumer.user", e.Consumer.User)
	if e.Consumer.Domain != "" && !ValidDomain(e.Consumer.Domain) {
		c.fail("consumer.domain", "%q must be a domain name or empty", e.Consumer.Domain)
	}
	c.oneOf("access_kind", e.AccessKind, AccessKinds)
	c.nonNegative("rows_read", e.RowsRead)
	c.nonNegative("duration_ms", e.DurationMs)
	return c.done(FamilyUsage)
}

// Validate implements Event.
func (e *QualityResult) Validate() error {
	var c checker
	c.envelope(&e.Envelope)
	c.urn("dataset_urn", e.DatasetURN, KindDataset)
	c.nonEmpty("check_name", e.CheckName)
	c.oneOf("check_type", e.CheckType, CheckTypes)
	c.oneOf("status", e.Status, CheckStatuses)
	c.oneOf("severity", e.Severity, Severities)
	return c.done(FamilyQuality)
}

// Validate implements Event.
func (e *ScoreChanged) Validate() error {
	var c checker
	c.envelope(&e.Envelope)
	c.urn("product_urn", e.ProductURN, KindProduct)
	for name, v := range map[string]float64{"new_health": e.NewHealth, "new_trust": e.NewTrust} {
		if v < 0 || v > 100 {
			c.fail(name, "must be within [0, 100], got %g", v)
		}
	}
	c.oneOf("new_health_band", e.NewHealthBand, Bands)
	c.oneOf("new_trust_band", e.NewTrustBand, Bands)
	return c.done(FamilyScores)
}
