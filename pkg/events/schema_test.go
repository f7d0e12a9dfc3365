package events

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The expected canonical forms and fingerprints were printed by Apache
// Avro Java 1.12.2 (SchemaNormalization.toParsingForm and
// parsingFingerprint64); internal/interop runs Java on every embedded schema.
func TestCanonicalForm(t *testing.T) {
	tests := []struct {
		name, schema, canonical string
		fingerprint             uint64
	}{
		{"null", `"null"`, `"null"`, 0x63dd24e7cc258f8a},
		{"every kind of type", `{"type":"record","name":"Outer","namespace":"a.b","doc":"x","aliases":["Old"],"fields":[
 {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"},"default":0,"doc":"d"},
 {"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"],"default":"RED"}},
 {"name":"f","type":{"type":"fixed","name":"c.Hash","size":16}},
 {"name":"again","type":"Color"},
 {"name":"h","type":"c.Hash"},
 {"name":"m","type":{"type":"map","values":{"type":"array","items":{"type":"int"}}}},
 {"name":"u","type":["null",{"type":"record","name":"Inner","fields":[{"name":"x","type":{"type":"string","avro.java.string":"String"}}]}],"default":null},
 {"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}}]}`,
			`{"name":"a.b.Outer","type":"record","fields":[{"name":"ts","type":"long"},{"name":"e","type":{"name":"a.b.Color","type":"enum","symbols":["RED","GREEN"]}},{"name":"f","type":{"name":"c.Hash","type":"fixed","size":16}},{"name":"again","type":"a.b.Color"},{"name":"h","type":"c.Hash"},{"name":"m","type":{"type":"map","values":{"type":"array","items":"int"}}},{"name":"u","type":["null",{"name":"a.b.Inner","type":"record","fields":[{"name":"x","type":"string"}]}]},{"name":"d","type":"bytes"}]}`,
			0xe47980e2bfd0b181},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseSchema(tt.schema)
			if err != nil {
				t.Fatal(err)
			}
			if got := canonicalForm(s); got != tt.canonical {
				t.Fatalf("canonical form\n got %s\nwant %s", got, tt.canonical)
			}
			if got := fingerprint64([]byte(tt.canonical)); got != tt.fingerprint {
				t.Fatalf("fingerprint = %016x, want %016x", got, tt.fingerprint)
			}
		})
	}
}

// TestEmbeddedFingerprints pins the fingerprints of the released schemas:
// Java's parsingFingerprint64, and goavro's older form still accepted.
func TestEmbeddedFingerprints(t *testing.T) {
	codecs, err := NewCodecs()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]uint64{
		"metadata v1": {0x2283c0081c4decba, 0x2bca67b76a337ae3},
		"lineage v1":  {0xff587feeb1a7e024, 0x9d16236ced1c7f0b},
		"usage v1":    {0x240cb67a1695927c, 0xc09abea07de93ed3},
		"quality v1":  {0xfda65b013ce69775, 0x11f57b2160ebe2e4},
		"scores v1":   {0x5d6860d4bd94c61c, 0xd46113f1cb6e62f6},
	}
	for _, v := range codecs.Versions() {
		key := fmt.Sprintf("%s v%d", v.Family, v.Version)
		w, ok := want[key]
		if !ok {
			continue
		}
		if v.Fingerprint != w[0] || v.LegacyFingerprint != w[1] {
			t.Errorf("%s: fingerprint %016x legacy %016x, want %016x and %016x", key, v.Fingerprint, v.LegacyFingerprint, w[0], w[1])
		}
	}
	// A record framed with the legacy fingerprint still decodes.
	ev := sampleEvents()[2]
	b, _ := codecs.Encode(ev)
	v := codecs.Current(FamilyUsage)
	legacy := append([]byte{0xC3, 0x01}, leBytes(v.LegacyFingerprint)...)
	legacy = append(legacy, b[10:]...)
	if got, err := codecs.Decode(t.Context(), legacy); err != nil || !reflect.DeepEqual(got, ev) {
		t.Fatalf("legacy fingerprint: %+v, %v", got, err)
	}
}

func leBytes(v uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b
}

func TestResolution(t *testing.T) {
	rec := func(fields string) string {
		return `{"type":"record","name":"R","namespace":"t","fields":[` + fields + `]}`
	}
	tests := []struct {
		name           string
		writer, reader string
		in             map[string]any
		want           map[string]any
		compileErr     string // non-empty: the pair must be refused at load
		decodeErr      bool   // the value must be refused with ErrUnresolvable
	}{
		{"string read as optional string",
			rec(`{"name":"a","type":"string"}`), rec(`{"name":"a","type":["null","string"],"default":null}`),
			map[string]any{"a": "x"}, map[string]any{"a": map[string]any{"string": "x"}}, "", false},
		{"int read as long", rec(`{"name":"a","type":"int"}`), rec(`{"name":"a","type":"long"}`),
			map[string]any{"a": int32(7)}, map[string]any{"a": int64(7)}, "", false},
		{"int read as double", rec(`{"name":"a","type":"int"}`), rec(`{"name":"a","type":"double"}`),
			map[string]any{"a": int32(-3)}, map[string]any{"a": float64(-3)}, "", false},
		{"long read as float", rec(`{"name":"a","type":"long"}`), rec(`{"name":"a","type":"float"}`),
			map[string]any{"a": int64(5)}, map[string]any{"a": float32(5)}, "", false},
		{"float read as double", rec(`{"name":"a","type":"float"}`), rec(`{"name":"a","type":"double"}`),
			map[string]any{"a": float32(1.5)}, map[string]any{"a": 1.5}, "", false},
		{"bytes read as string", rec(`{"name":"a","type":"bytes"}`), rec(`{"name":"a","type":"string"}`),
			map[string]any{"a": []byte("hi")}, map[string]any{"a": "hi"}, "", false},
		{"int read as optional long", rec(`{"name":"a","type":"int"}`), rec(`{"name":"a","type":["null","long"],"default":null}`),
			map[string]any{"a": int32(1)}, map[string]any{"a": map[string]any{"long": int64(1)}}, "", false},
		{"optional string read as string", rec(`{"name":"a","type":["null","string"]}`), rec(`{"name":"a","type":"string"}`),
			map[string]any{"a": map[string]any{"string": "y"}}, map[string]any{"a": "y"}, "", false},
		{"null read as string is refused", rec(`{"name":"a","type":["null","string"]}`), rec(`{"name":"a","type":"string"}`),
			map[string]any{"a": nil}, nil, "", true},
		{"union branch re-ordered and promoted", rec(`{"name":"a","type":["null","int"]}`), rec(`{"name":"a","type":["double","null"]}`),
			map[string]any{"a": map[string]any{"int": int32(2)}}, map[string]any{"a": map[string]any{"double": 2.0}}, "", false},
		{"timestamp from plain long", rec(`{"name":"a","type":"long"}`), rec(`{"name":"a","type":{"type":"long","logicalType":"timestamp-millis"}}`),
			map[string]any{"a": int64(1000)}, map[string]any{"a": time.UnixMilli(1000).UTC()}, "", false},
		{"missing field gets the default", rec(`{"name":"a","type":"int"}`), rec(`{"name":"a","type":"int"},{"name":"b","type":{"type":"array","items":"string"},"default":["x"]}`),
			map[string]any{"a": int32(1)}, map[string]any{"a": int32(1), "b": []any{"x"}}, "", false},
		{"field the reader dropped is ignored", rec(`{"name":"a","type":"int"},{"name":"gone","type":"string"}`), rec(`{"name":"a","type":"int"}`),
			map[string]any{"a": int32(1), "gone": "z"}, map[string]any{"a": int32(1)}, "", false},
		{"field renamed with an alias", rec(`{"name":"old","type":"string"}`), rec(`{"name":"new","aliases":["old"],"type":"string"}`),
			map[string]any{"old": "v"}, map[string]any{"new": "v"}, "", false},
		{"record renamed with an alias", `{"type":"record","name":"Old","fields":[{"name":"a","type":"int"}]}`,
			`{"type":"record","name":"New","aliases":["Old"],"fields":[{"name":"a","type":"int"}]}`,
			map[string]any{"a": int32(4)}, map[string]any{"a": int32(4)}, "", false},
		{"enum symbol the reader lacks takes its default",
			rec(`{"name":"c","type":{"type":"enum","name":"C","symbols":["A","B","Z"]}}`),
			rec(`{"name":"c","type":{"type":"enum","name":"C","symbols":["A","B","OTHER"],"default":"OTHER"}}`),
			map[string]any{"c": "Z"}, map[string]any{"c": "OTHER"}, "", false},
		{"enum symbol without a default is refused",
			rec(`{"name":"c","type":{"type":"enum","name":"C","symbols":["A","Z"]}}`),
			rec(`{"name":"c","type":{"type":"enum","name":"C","symbols":["A"]}}`),
			map[string]any{"c": "Z"}, nil, "", true},
		{"array items promoted", rec(`{"name":"a","type":{"type":"array","items":"int"}}`), rec(`{"name":"a","type":{"type":"array","items":"long"}}`),
			map[string]any{"a": []any{int32(1), int32(2)}}, map[string]any{"a": []any{int64(1), int64(2)}}, "", false},
		{"map values promoted", rec(`{"name":"a","type":{"type":"map","values":"int"}}`), rec(`{"name":"a","type":{"type":"map","values":"double"}}`),
			map[string]any{"a": map[string]any{"k": int32(3)}}, map[string]any{"a": map[string]any{"k": 3.0}}, "", false},
		{"new field without default", rec(`{"name":"a","type":"int"}`), rec(`{"name":"a","type":"int"},{"name":"b","type":"int"}`),
			nil, nil, `no field "b"`, false},
		{"string read as int", rec(`{"name":"a","type":"string"}`), rec(`{"name":"a","type":"int"}`),
			nil, nil, "cannot be read as int", false},
		{"long read as int", rec(`{"name":"a","type":"long"}`), rec(`{"name":"a","type":"int"}`),
			nil, nil, "cannot be read as int", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := parseSchema(tt.writer)
			if err != nil {
				t.Fatal(err)
			}
			r, err := parseSchema(tt.reader)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := compileResolution(w, r)
			if tt.compileErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.compileErr) {
					t.Fatalf("compile error = %v, want one containing %q", err, tt.compileErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := plan(tt.in)
			if tt.decodeErr {
				if !errors.Is(err, ErrUnresolvable) {
					t.Fatalf("resolve = %v, %v; want ErrUnresolvable", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("resolve = %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	now := time.Now()
	sample := func(f Family) Event {
		for _, ev := range sampleEvents() {
			if ev.Family() == f {
				return ev
			}
		}
		panic(f)
	}
	many := func(n int, f func(int) string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	l := DefaultLimits()
	tests := []struct {
		name   string
		ev     func() Event
		reason string
	}{
		{"event 91 days old", func() Event {
			e := sample(FamilyUsage).(*UsageEvent)
			e.EventTime = now.Add(-91 * 24 * time.Hour)
			return e
		}, ReasonEventTimeWindow},
		{"event in the year 2000", func() Event {
			e := sample(FamilyUsage).(*UsageEvent)
			e.EventTime = time.Date(2000, 6, 1, 0, 0, 0, 0, time.UTC)
			return e
		}, ReasonEventTimeWindow},
		{"event two hours ahead", func() Event {
			e := sample(FamilyQuality).(*QualityResult)
			e.EventTime = now.Add(2 * time.Hour)
			return e
		}, ReasonEventTimeWindow},
		{"megabyte urn", func() Event {
			e := sample(FamilyUsage).(*UsageEvent)
			e.DatasetURN = "urn:mesh:dataset:warehouse:" + strings.Repeat("x", 1<<20)
			return e
		}, ReasonURNTooLong},
		{"huge description", func() Event {
			e := sample(FamilyMetadata).(*ProductMetadata)
			e.Description = strings.Repeat("d", 70<<10)
			return e
		}, ReasonTextTooLong},
		{"too many tags", func() Event {
			e := sample(FamilyMetadata).(*ProductMetadata)
			e.Tags = many(l.MaxListLen+1, func(int) string { return "t" })
			return e
		}, ReasonListTooLong},
		{"lineage cross product", func() Event {
			e := sample(FamilyLineage).(*LineageRun)
			e.Inputs = many(1000, func(i int) string { return DatasetURN("wh", "in"+string(rune('a'+i%26))+string(rune('a'+i/26%26))) })
			e.Outputs = many(1000, func(i int) string { return DatasetURN("wh", "out"+string(rune('a'+i%26))+string(rune('a'+i/26%26))) })
			return e
		}, ReasonTooManyEdges},
		{"plain invalid value", func() Event { e := sample(FamilyQuality).(*QualityResult); e.Status = "meh"; return e }, ReasonInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ev().ValidateWith(l, now)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Reason() != tt.reason {
				t.Fatalf("ValidateWith = %v, want reason %s", err, tt.reason)
			}
		})
	}
	if err := (Limits{EventTimePast: 20 * 365 * 24 * time.Hour, EventTimeFuture: time.Hour, MaxURNBytes: 1024, MaxTextBytes: 1024, MaxListLen: 10, MaxLineageEdges: 10}).Validate(); err == nil {
		t.Fatal("a 20-year window must be refused (more than 100 monthly partitions per insert)")
	}
}
