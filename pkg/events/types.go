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
	// Validate reports every field-level problem at once.
	Validate() error
}

// Envelope is carried by every event.
type Envelope struct {
	// EventID is a producer-made UUID and the idempotency key: the same
	// event sent twice is stored once.
	EventID string
	// EventTime is when the fact happened, at millisecond precision.
	EventTime time.Time
	// Emitter is the domain (or "platform") that publishes the event; it
	// must match the topic mesh.<emitter>.<family>.
	Emitter string
}

// Header returns the envelope.
func (e *Envelope) Header() *Envelope { return e }

// ProductMetadata is a data product's declared state.
type ProductMetadata struct {
	Envelope
	ProductURN       string
	Domain           string
	Name             string
	Description      string
	Owners           []string
	Tags             []string
	Lifecycle        string
	DocumentationURL string // empty when not declared
	AccessNotes      string
	Outputs          []OutputDataset
	Inputs           []string
	SLO              *SLO // nil when not declared
}

// OutputDataset is a dataset a product publishes.
type OutputDataset struct {
	DatasetURN  string
	Description string
	SchemaRef   string // empty when the schema is not registered
	Fields      []DatasetField
}

// DatasetField documents one field of an output dataset.
type DatasetField struct {
	Name           string
	Type           string
	Description    string
	Classification string // public | internal | confidential | restricted, or empty
	PII            bool
}

// SLO holds a product's service-level objectives; nil members are undeclared.
type SLO struct {
	FreshnessSeconds   *int64
	MinQualityPassRate *float64
}

// LineageRun is one state change of one run of a job.
type LineageRun struct {
	Envelope
	JobURN        string
	RunID         string
	State         string
	Producer      string
	Inputs        []string
	Outputs       []string
	ColumnLineage []ColumnLineage
	RowsWritten   *int64
	BytesWritten  *int64
	ErrorMessage  string
}

// ColumnLineage says an output field is derived from an input field.
type ColumnLineage struct {
	OutputDataset  string
	OutputField    string
	InputDataset   string
	InputField     string
	Transformation string
}

// UsageEvent says a consumer read a dataset.
type UsageEvent struct {
	Envelope
	DatasetURN string
	Consumer   Consumer
	AccessKind string
	RowsRead   int64
	DurationMs int64
}

// Consumer identifies who read a dataset.
type Consumer struct {
	User   string
	Team   string
	Domain string // the consumer's own domain; empty outside the mesh
	Tool   string
}

// QualityResult is the outcome of one data-quality check.
type QualityResult struct {
	Envelope
	DatasetURN    string
	CheckName     string
	CheckType     string
	Status        string
	Severity      string
	ObservedValue *float64
	Threshold     *float64
	Message       string
}

// ScoreChanged announces a product's new health and trust.
type ScoreChanged struct {
	Envelope
	ProductURN    string
	Domain        string
	OldHealth     *float64
	NewHealth     float64
	OldTrust      *float64
	NewTrust      float64
	OldHealthBand string // empty when there was no previous score
	NewHealthBand string
	OldTrustBand  string
	NewTrustBand  string
	Components    []ScoreComponent
	Reasons       []string
	Cause         string
}

// ScoreComponent is one visible part of a score.
type ScoreComponent struct {
	Name   string
	Score  float64
	Weight float64
	Detail string
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

// NewEvent returns a zero event of the family, for decoding into.
func NewEvent(f Family) Event {
	switch f {
	case FamilyMetadata:
		return &ProductMetadata{}
	case FamilyLineage:
		return &LineageRun{}
	case FamilyUsage:
		return &UsageEvent{}
	case FamilyQuality:
		return &QualityResult{}
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
	RunStates     = []string{"START", "RUNNING", "COMPLETE", "FAIL", "ABORT"}
	CheckTypes    = []string{"freshness", "volume", "schema", "validity", "custom"}
	CheckStatuses = []string{"PASS", "WARN", "FAIL", "ERROR"}
	Severities    = []string{"low", "medium", "high", "critical"}
	AccessKinds   = []string{"query", "export", "api", "stream", "other"}
	// Classifications of a field; the empty string means "not classified".
	Classifications = []string{"", "public", "internal", "confidential", "restricted"}
	Bands           = []string{"healthy", "degraded", "critical"}
)
