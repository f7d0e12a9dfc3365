package events

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseURN(t *testing.T) {
	tests := []struct {
		in      string
		want    URN
		wantErr string
	}{
		{in: "urn:mesh:product:sales:orders", want: URN{KindProduct, "sales", "orders"}},
		{in: "urn:mesh:dataset:snowflake:sales.orders_daily", want: URN{KindDataset, "snowflake", "sales.orders_daily"}},
		{in: "urn:mesh:dataset:s3:bucket:path/to/x", want: URN{KindDataset, "s3", "bucket:path/to/x"}},
		{in: "urn:mesh:job:sales:build-orders", want: URN{KindJob, "sales", "build-orders"}},
		{in: "urn:mesh:product:Sales:orders", wantErr: "lower-case"},
		{in: "urn:mesh:product:sales:", wantErr: "empty name"},
		{in: "urn:mesh:product::orders", wantErr: "lower-case"},
		{in: "urn:mesh:widget:a:b", wantErr: "unknown kind"},
		{in: "urn:other:product:a:b", wantErr: "must start with"},
		{in: "urn:mesh:product:sales", wantErr: "want urn:mesh"},
		{in: "urn:mesh:dataset:s3:a::b", wantErr: "empty part"},
		{in: "urn:mesh:product:sales:or ders", wantErr: "white space"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseURN(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseURN(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURN(%q): %v", tt.in, err)
			}
			if got != tt.want || got.String() != tt.in {
				t.Fatalf("ParseURN(%q) = %+v (%s), want %+v", tt.in, got, got, tt.want)
			}
		})
	}
}

func TestParseTopic(t *testing.T) {
	tests := []struct {
		topic   string
		emitter string
		family  Family
		ok      bool
	}{
		{"mesh.sales.metadata", "sales", FamilyMetadata, true},
		{"mesh.platform.usage", "platform", FamilyUsage, true},
		{"mesh.a-b.quality", "a-b", FamilyQuality, true},
		{"mesh.scores", "", "", false},
		{"mesh.deadletter", "", "", false},
		{"mesh.Sales.usage", "", "", false},
		{"mesh.sales.other", "", "", false},
	}
	for _, tt := range tests {
		e, f, err := ParseTopic(tt.topic)
		if (err == nil) != tt.ok || e != tt.emitter || f != tt.family {
			t.Errorf("ParseTopic(%q) = %q, %q, %v", tt.topic, e, f, err)
		}
	}
}

// testTime is recent, so the samples are inside the event-time window.
var testTime = time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli()).UTC()

func env(emitter string) Envelope {
	return Envelope{EventID: "6f1c2f0e-9a57-4c57-9b7e-1d2f3a4b5c6d", EventTime: testTime, Emitter: emitter}
}

func ptr[T any](v T) *T { return &v }

// sampleEvents returns one fully populated valid event of each family.
func sampleEvents() []Event {
	return []Event{
		&ProductMetadata{
			Envelope: env("sales"), ProductURN: "urn:mesh:product:sales:orders", Domain: "sales", Name: "orders",
			Description: "All orders", Owners: []string{"ana@example.com"}, Tags: []string{"gold"}, Lifecycle: "active",
			DocumentationURL: "https://wiki/orders", AccessNotes: "SQL via warehouse",
			Outputs: []OutputDataset{{DatasetURN: "urn:mesh:dataset:warehouse:sales.orders", Description: "orders",
				SchemaRef: "sr:sales.orders-value", Fields: []DatasetField{
					{Name: "id", Type: "string", Description: "order id", Classification: "internal"},
					{Name: "email", Type: "string", Classification: "restricted", PII: true}}}},
			Inputs: []string{"urn:mesh:dataset:warehouse:crm.customers"},
			SLO:    &SLO{FreshnessSeconds: ptr[int64](3600), MinQualityPassRate: ptr(0.95)},
		},
		&LineageRun{
			Envelope: env("sales"), JobURN: "urn:mesh:job:sales:build-orders", RunID: "r1", State: "COMPLETE",
			Producer: "https://example/airflow", Inputs: []string{"urn:mesh:dataset:warehouse:crm.customers"},
			Outputs: []string{"urn:mesh:dataset:warehouse:sales.orders"},
			ColumnLineage: []ColumnLineage{{OutputDataset: "urn:mesh:dataset:warehouse:sales.orders", OutputField: "email",
				InputDataset: "urn:mesh:dataset:warehouse:crm.customers", InputField: "email", Transformation: "identity"}},
			RowsWritten: ptr[int64](10), BytesWritten: ptr[int64](1000), ErrorMessage: "",
		},
		&UsageEvent{Envelope: env("platform"), DatasetURN: "urn:mesh:dataset:warehouse:sales.orders",
			Consumer: Consumer{User: "bob", Team: "growth", Domain: "marketing", Tool: "looker"}, AccessKind: "query",
			RowsRead: 500, DurationMs: 30},
		&QualityResult{Envelope: env("sales"), DatasetURN: "urn:mesh:dataset:warehouse:sales.orders", CheckName: "not_null_id",
			CheckType: "validity", Status: "FAIL", Severity: "high", ObservedValue: ptr(3.0), Threshold: ptr(0.0), Message: "3 nulls"},
		&ScoreChanged{Envelope: env("scorer"), ProductURN: "urn:mesh:product:sales:orders", Domain: "sales",
			OldHealth: ptr(90.0), NewHealth: ptr(40.0), NewTrust: ptr(55.0), OldHealthBand: "healthy", NewHealthBand: "critical",
			NewTrustBand: "degraded", Components: []ScoreComponent{{Name: "quality", Score: 40, Weight: 0.5, Detail: "3 of 5 failed"}},
			Reasons: []string{"3 of 5 checks failed on sales.orders"}, Cause: "quality",
			RootCauses: []RootCause{{ProductURN: "urn:mesh:product:sales:orders", Hops: 0, HealthBand: "critical", Signals: []string{"failing on wh:sales.orders: not_null_id (critical, FAIL)"}}}},
	}
}

func TestRoundTrip(t *testing.T) {
	codecs, err := NewCodecs()
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range sampleEvents() {
		t.Run(string(ev.Family()), func(t *testing.T) {
			if err := ev.Validate(); err != nil {
				t.Fatalf("sample is invalid: %v", err)
			}
			b, err := codecs.Encode(ev)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != 0xC3 || b[1] != 0x01 || binary.LittleEndian.Uint64(b[2:10]) != codecs.Current(ev.Family()).Fingerprint {
				t.Fatalf("not single-object encoded with the current fingerprint: % x", b[:10])
			}
			got, err := codecs.Decode(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, ev) {
				t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, ev)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	valid := func(f Family) Event {
		for _, ev := range sampleEvents() {
			if ev.Family() == f {
				return ev
			}
		}
		panic(f)
	}
	tests := []struct {
		name   string
		mutate func() Event
		fields []string // fields the error must name
	}{
		{"bad event id", func() Event { e := valid(FamilyUsage).(*UsageEvent); e.EventID = "x"; return e }, []string{"event_id"}},
		{"event time in seconds", func() Event {
			e := valid(FamilyUsage).(*UsageEvent)
			e.EventTime = time.UnixMilli(1_700_000_000)
			return e
		}, []string{"event_time"}},
		{"usage several problems", func() Event {
			e := valid(FamilyUsage).(*UsageEvent)
			e.DatasetURN = "orders"
			e.Consumer.User = ""
			e.RowsRead = -1
			return e
		}, []string{"dataset_urn", "consumer.user", "rows_read"}},
		{"metadata domain mismatch", func() Event {
			e := valid(FamilyMetadata).(*ProductMetadata)
			e.Domain = "finance"
			return e
		}, []string{"domain"}},
		{"metadata field classification", func() Event {
			e := valid(FamilyMetadata).(*ProductMetadata)
			e.Outputs[0].Fields[1].Classification = "secret"
			e.SLO.MinQualityPassRate = ptr(1.5)
			return e
		}, []string{"outputs[0].fields[1].classification", "slo.min_quality_pass_rate"}},
		{"lineage state", func() Event { e := valid(FamilyLineage).(*LineageRun); e.State = "DONE"; return e }, []string{"state"}},
		{"quality status", func() Event {
			e := valid(FamilyQuality).(*QualityResult)
			e.Status = "ok"
			e.CheckType = ""
			return e
		}, []string{"check_type", "status"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.mutate().Validate()
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want a ValidationError", err)
			}
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
			}
			if !reflect.DeepEqual(got, tt.fields) {
				t.Fatalf("fields = %v, want %v (%v)", got, tt.fields, err)
			}
		})
	}
}

// TestDecodeOldVersion plays an old producer: a v1 usage record is decoded
// while v2 (a fixture adding defaulted fields) is the current schema, so it
// is read by field name with v2's defaults; a v2 record decodes too.
func TestDecodeOldVersion(t *testing.T) {
	codecs, err := NewCodecsFS(os.DirFS("testdata/evolved"))
	if err != nil {
		t.Fatal(err)
	}
	if v := codecs.Current(FamilyUsage).Version; v != 2 {
		t.Fatalf("current usage version = %d, want the v2 fixture", v)
	}
	var v1 *SchemaVersion
	for _, v := range codecs.Versions() {
		if v.Family == FamilyUsage && v.Version == 1 {
			v1 = v
		}
	}
	want := sampleEvents()[2].(*UsageEvent)
	b, err := codecs.EncodeNative(v1, want.toNative())
	if err != nil {
		t.Fatal(err)
	}
	writer, m, err := codecs.DecodeNative(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if writer.Version != 1 {
		t.Fatalf("writer version = %d, want 1", writer.Version)
	}
	if m["region"] != "unknown" || m["sampled"] != nil {
		t.Fatalf("v2 fields not defaulted: region=%v sampled=%v", m["region"], m["sampled"])
	}
	got, err := codecs.Decode(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("v1 record read as %+v, want %+v", got, want)
	}

	// A v2 producer's record, with the new fields set, reads into the same type.
	n2 := want.toNative()
	n2["region"] = "eu"
	n2["sampled"] = map[string]any{"double": 0.5}
	b2, err := codecs.EncodeNative(codecs.Current(FamilyUsage), n2)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := codecs.Decode(context.Background(), b2); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("v2 record read as %+v, %v", got, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	codecs, err := NewCodecs()
	if err != nil {
		t.Fatal(err)
	}
	good, err := codecs.Encode(sampleEvents()[2])
	if err != nil {
		t.Fatal(err)
	}
	unknown := append([]byte{}, good...)
	unknown[5] ^= 0xFF
	tests := []struct {
		name   string
		in     []byte
		reason string
	}{
		{"empty", nil, ReasonBadFraming},
		{"garbage", []byte("hello, world"), ReasonBadFraming},
		{"json", []byte(`{"event_id":"x"}`), ReasonBadFraming},
		{"unknown fingerprint", unknown, ReasonUnknownFingerprint},
		{"truncated body", good[:len(good)-5], ReasonMalformedBody},
		{"trailing bytes", append(append([]byte{}, good...), 1, 2, 3), ReasonTrailingBytes},
		{"confluent without registry", []byte{0, 0, 0, 0, 7, 2, 3}, ReasonNoRegistry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := codecs.Decode(context.Background(), tt.in)
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason != tt.reason {
				t.Fatalf("Decode = %v, want reason %s", err, tt.reason)
			}
		})
	}
}

type fakeRegistry map[int]string

func (r fakeRegistry) SchemaByID(_ context.Context, id int) (string, error) {
	if s, ok := r[id]; ok {
		return s, nil
	}
	return "", errors.New("404")
}

func TestDecodeConfluentFraming(t *testing.T) {
	codecs, err := NewCodecs()
	if err != nil {
		t.Fatal(err)
	}
	cur := codecs.Current(FamilyQuality)
	codecs.WithRegistry(fakeRegistry{42: cur.Schema(), 43: `{"type":"record","name":"X","fields":[{"name":"a","type":"int"}]}`})
	ev := sampleEvents()[3]
	soe, _ := codecs.Encode(ev)
	framed := append([]byte{0, 0, 0, 0, 42}, soe[10:]...)
	got, err := codecs.Decode(context.Background(), framed)
	if err != nil || !reflect.DeepEqual(got, ev) {
		t.Fatalf("confluent decode = %+v, %v", got, err)
	}
	_, err = codecs.Decode(context.Background(), append([]byte{0, 0, 0, 0, 43}, 2))
	if de := (*DecodeError)(nil); !errors.As(err, &de) || de.Reason != ReasonUnknownFingerprint {
		t.Fatalf("foreign registry schema: %v", err)
	}
	if _, err := codecs.Decode(context.Background(), append([]byte{0, 0, 0, 0, 44}, 2)); !IsTemporary(err) {
		t.Fatalf("registry miss should be temporary: %v", err)
	}
}

// TestSchemaRegistryClient decodes Confluent-framed records through the real
// registry client against an HTTP registry: a known id decodes, an unknown
// one (404) is a permanent error, a registry that fails is a temporary one.
func TestSchemaRegistryClient(t *testing.T) {
	codecs, err := NewCodecs()
	if err != nil {
		t.Fatal(err)
	}
	schema := codecs.Current(FamilyUsage).Schema()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/schemas/ids/7":
			_ = json.NewEncoder(w).Encode(map[string]any{"schema": schema})
		case "/schemas/ids/500":
			http.Error(w, `{"error_code":50001,"message":"boom"}`, http.StatusInternalServerError)
		default:
			http.Error(w, `{"error_code":40403,"message":"Schema not found"}`, http.StatusNotFound)
		}
	}))
	defer srv.Close()
	reg, err := NewSchemaRegistry([]string{srv.URL}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	codecs.WithRegistry(reg)
	ev := sampleEvents()[2]
	soe, _ := codecs.Encode(ev)
	frame := func(id byte) []byte { return append([]byte{0, 0, 0, 0, id}, soe[10:]...) }
	if got, err := codecs.Decode(context.Background(), frame(7)); err != nil || !reflect.DeepEqual(got, ev) {
		t.Fatalf("id 7: %+v, %v", got, err)
	}
	_, err = codecs.Decode(context.Background(), frame(8))
	if de := (*DecodeError)(nil); !errors.As(err, &de) || de.Reason != ReasonUnknownSchemaID || de.Temporary {
		t.Fatalf("unknown id: %v, want a permanent unknown_schema_id", err)
	}
	if _, err := codecs.Decode(context.Background(), append([]byte{0, 0, 0, 1, 0xF4}, soe[10:]...)); !IsTemporary(err) {
		t.Fatalf("failing registry: %v, want temporary", err)
	}
}

// TestAllocationBomb: a record of a few bytes that claims an array of 2^31
// items is refused as malformed; it used to make goavro allocate 32 GiB and
// kill the process (found by FuzzDecode's sibling, a hand-made record).
func TestAllocationBomb(t *testing.T) {
	codecs, err := NewCodecs()
	if err != nil {
		t.Fatal(err)
	}
	_, err = codecs.Decode(context.Background(), allocationBomb(codecs))
	var de *DecodeError
	if !errors.As(err, &de) || de.Reason != ReasonMalformedBody {
		t.Fatalf("Decode = %v, want a malformed_body refusal", err)
	}
	// A string claiming 2 GiB is refused the same way.
	s := append([]byte{0xC3, 0x01}, codecs.Current(FamilyUsage).FingerprintBytes()...)
	s = binary.AppendVarint(s, 1<<31-1)
	if _, err := codecs.Decode(context.Background(), s); !errors.As(err, &de) || de.Reason != ReasonMalformedBody {
		t.Fatalf("Decode = %v, want a malformed_body refusal", err)
	}
}

// allocationBomb is a lineage record whose inputs claim 2^31 - 1 items.
func allocationBomb(codecs *Codecs) []byte {
	b := append([]byte{0xC3, 0x01}, codecs.Current(FamilyLineage).FingerprintBytes()...)
	str := func(s string) { b = binary.AppendVarint(b, int64(len(s))); b = append(b, s...) }
	str("x")
	b = binary.AppendVarint(b, 0)
	for _, s := range []string{"e", "j", "r", "s", "p"} {
		str(s)
	}
	return binary.AppendVarint(b, 1<<31-1) // inputs: "2^31 - 1 items follow"
}

// TestScoreChangedV1 reads an alert a v1 scorer left on the compacted
// mesh.scores into the v2 type: scores become known values, no root causes.
func TestScoreChangedV1(t *testing.T) {
	codecs, err := NewCodecs()
	if err != nil {
		t.Fatal(err)
	}
	var v1 *SchemaVersion
	for _, v := range codecs.Versions() {
		if v.Family == FamilyScores && v.Version == 1 {
			v1 = v
		}
	}
	b, err := codecs.EncodeNative(v1, map[string]any{"event_id": "6f1c2f0e-9a57-4c57-9b7e-1d2f3a4b5c6d", "event_time": testTime,
		"emitter": "scorer", "product_urn": "urn:mesh:product:sales:orders", "domain": "sales", "old_health": nil, "new_health": 72.5,
		"old_trust": nil, "new_trust": 60.0, "old_health_band": nil, "new_health_band": "healthy", "old_trust_band": nil,
		"new_trust_band": "degraded", "components": []any{}, "reasons": []any{"r"}, "cause": "first score"})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := codecs.Decode(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	sc := ev.(*ScoreChanged)
	if sc.NewHealth == nil || *sc.NewHealth != 72.5 || sc.NewTrust == nil || *sc.NewTrust != 60 || len(sc.RootCauses) != 0 || sc.NewTrustBand != "degraded" {
		t.Fatalf("v1 alert read as %+v", sc)
	}
}
