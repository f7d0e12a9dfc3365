package events

import (
	"time"
)

// Event is implemented by every event type.
type Event interface {
	// Family names the topic suffix and schema directory.
	Family() Family
	// Key is the Kafka record key: the URN the event is about.
	Key() string
	// Header returns the fields every event carries.
	Header() *Envelope
	// Validate reports every field-level problem at once, with
	// DefaultLimits at the current time.
	Validate() error
	// ValidateWith is Validate with given limits and time.
	ValidateWith(l Limits, now time.Time) error
}

// Envelope is carried by every event.
type Envelope struct {
	// EventID is a producer-made UUID and the idempotency key: the same
	// event sent twice is stored once.
	EventID string `json:"event_id"`
	// EventTime is when the fact happened, at millisecond precision.
	EventTime time.Time `json:"event_time"`
	// Emitter is the domain (or "platform") that publishes the event; it
	// must match the topic mesh.<emitter>.<family>.
	Emitter string `json:"emitter"`
}

// Header returns the envelope.
func (e *Envelope) Header() *Envelope { return e }

// ProductMetadata is a data product's declared state.
type ProductMetadata struct {
	Envelope
	ProductURN       string          `json:"product_urn"`
	Domain           string          `json:"domain"`
	Name             string          `json:"name"`
	Description      string          `json:"description"`
	Owners           []string        `json:"owners,omitempty"`
	Tags             []string        `json:"tags,omitempty"`
	Lifecycle        string          `json:"lifecycle"`
	DocumentationURL string          `json:"documentation_url"` // empty when not declared
	AccessNotes      string          `json:"access_notes"`
	Outputs          []OutputDataset `json:"outputs,omitempty"`
	Inputs           []string        `json:"inputs,omitempty"`
	SLO              *SLO            `json:"slo,omitempty"` // nil when not declared
}

// OutputDataset is a dataset a product publishes.
type OutputDataset struct {
	DatasetURN  string         `json:"dataset_urn"`
	Description string         `json:"description"`
	SchemaRef   string         `json:"schema_ref"` // empty when the schema is not registered
	Fields      []DatasetField `json:"fields,omitempty"`
}

// DatasetField documents one field of an output dataset.
type DatasetField struct {
	Name           string `json:"name"`
	Type           string `json:"type"`
	Description    string `json:"description"`
	Classification string `json:"classification"` // public | internal | confidential | restricted, or empty
	PII            bool   `json:"pii"`
}

// SLO holds a product's service-level objectives; nil members are undeclared.
type SLO struct {
	FreshnessSeconds   *int64   `json:"freshness_seconds,omitempty"`
	MinQualityPassRate *float64 `json:"min_quality_pass_rate,omitempty"`
}

// LineageRun is one state change of one run of a job.
type LineageRun struct {
	Envelope
	JobURN        string          `json:"job_urn"`
	RunID         string          `json:"run_id"`
	State         string          `json:"state"`
	Producer      string          `json:"producer"`
	Inputs        []string        `json:"inputs,omitempty"`
	Outputs       []string        `json:"outputs,omitempty"`
	ColumnLineage []ColumnLineage `json:"column_lineage,omitempty"`
	RowsWritten   *int64          `json:"rows_written,omitempty"`
	BytesWritten  *int64          `json:"bytes_written,omitempty"`
	ErrorMessage  string          `json:"error_message"`
}

// ColumnLineage says an output field is derived from an input field.
type ColumnLineage struct {
	OutputDataset  string `json:"output_dataset"`
	OutputField    string `json:"output_field"`
	InputDataset   string `json:"input_dataset"`
	InputField     string `json:"input_field"`
	Transformation string `json:"transformation"`
}

// UsageEvent says a consumer read a dataset.
type UsageEvent struct {
	Envelope
	DatasetURN string   `json:"dataset_urn"`
	Consumer   Consumer `json:"consumer"`
	AccessKind string   `json:"access_kind"`
	RowsRead   int64    `json:"rows_read"`
	DurationMs int64    `json:"duration_ms"`
}

// Consumer identifies who read a dataset.
type Consumer struct {
	User   string `json:"user"`
	Team   string `json:"team"`
	Domain string `json:"domain"` // the consumer's own domain; empty outside the mesh
	Tool   string `json:"tool"`
}

// QualityResult is the outcome of one data-quality check.
type QualityResult struct {
	Envelope
	DatasetURN    string   `json:"dataset_urn"`
	CheckName     string   `json:"check_name"`
	CheckType     string   `json:"check_type"`
	Status        string   `json:"status"`
	Severity      string   `json:"severity"`
	ObservedValue *float64 `json:"observed_value,omitempty"`
	Threshold     *float64 `json:"threshold,omitempty"`
	Message       string   `json:"message"`
}

// ScoreChanged announces a product's new health and trust.
type ScoreChanged struct {
	Envelope
	ProductURN    string           `json:"product_urn"`
	Domain        string           `json:"domain"`
	OldHealth     *float64         `json:"old_health,omitempty"`
	NewHealth     *float64         `json:"new_health"` // nil: unknown (no signals yet)
	OldTrust      *float64         `json:"old_trust,omitempty"`
	NewTrust      *float64         `json:"new_trust"`       // nil: unknown
	OldHealthBand string           `json:"old_health_band"` // empty when there was no previous alert
	NewHealthBand string           `json:"new_health_band"`
	OldTrustBand  string           `json:"old_trust_band"`
	NewTrustBand  string           `json:"new_trust_band"`
	Components    []ScoreComponent `json:"components,omitempty"`
	Reasons       []string         `json:"reasons,omitempty"`
	Cause         string           `json:"cause"`
	RootCauses    []RootCause      `json:"root_causes,omitempty"`
}

// RootCause names where a problem is: the product itself (Hops 0) or an
// upstream product, and the concrete signals there.
type RootCause struct {
	ProductURN string   `json:"product_urn"`
	Hops       int      `json:"hops"`
	HealthBand string   `json:"health_band"`
	Signals    []string `json:"signals,omitempty"`
}

// ScoreComponent is one visible part of a score.
type ScoreComponent struct {
	Name   string  `json:"name"`
	Score  float64 `json:"score"`
	Weight float64 `json:"weight"`
	Detail string  `json:"detail"`
}

func (*ProductMetadata) Family() Family { return FamilyMetadata }
func (*LineageRun) Family() Family      { return FamilyLineage }
func (*UsageEvent) Family() Family      { return FamilyUsage }
func (*QualityResult) Family() Family   { return FamilyQuality }
func (*ScoreChanged) Family() Family    { return FamilyScores }

func (e *ProductMetadata) Key() string { return e.ProductURN }
func (e *LineageRun) Key() string      { return e.JobURN }
func (e *UsageEvent) Key() string      { return e.DatasetURN }
func (e *QualityResult) Key() string   { return e.DatasetURN }
func (e *ScoreChanged) Key() string    { return e.ProductURN }

// NewEvent returns an event of the family holding the schema defaults
// (lifecycle active, access kind query, severity medium), for decoding into.
func NewEvent(f Family) Event {
	switch f {
	case FamilyMetadata:
		return &ProductMetadata{Lifecycle: "active"}
	case FamilyLineage:
		return &LineageRun{}
	case FamilyUsage:
		return &UsageEvent{AccessKind: "query"}
	case FamilyQuality:
		return &QualityResult{Severity: "medium"}
	case FamilyScores:
		return &ScoreChanged{}
	}
	return nil
}

// Allowed values of the enumerated string fields. They are strings on the
// wire rather than Avro enums so that adding a value is not a breaking
// schema change; Validate enforces the set this version knows.
var (
	Lifecycles    = []string{"draft", "active", "deprecated", "retired"}
	RunStates     = []string{"START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER"}
	CheckTypes    = []string{"freshness", "volume", "schema", "validity", "custom"}
	CheckStatuses = []string{"PASS", "WARN", "FAIL", "ERROR"}
	Severities    = []string{"low", "medium", "high", "critical"}
	AccessKinds   = []string{"query", "export", "api", "stream", "other"}
	// Classifications of a field; the empty string means "not classified".
	Classifications = []string{"", "public", "internal", "confidential", "restricted"}
	Bands           = []string{"healthy", "degraded", "critical", "unknown"}
)
