package score

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func fullMeta() Metadata {
	return Metadata{Description: "d", Tags: []string{"t"}, Owners: []string{"o"}, DocumentationURL: "u", AccessNotes: "a",
		FreshnessSLO: time.Hour, HasSLO: true, Outputs: 1, OutputsWithSchema: 1, Fields: 4, FieldsDescribed: 4,
		FieldsClassified: 4, FieldsSnakeCase: 4, PIIFields: 1}
}

func checks(pass, fail int, severity string) []CheckResult {
	var out []CheckResult
	for i := range pass + fail {
		st := "PASS"
		if i >= pass {
			st = "FAIL"
		}
		out = append(out, CheckResult{Dataset: "urn:mesh:dataset:wh:sales.orders", Check: "c" + string(rune('a'+i)), Status: st, Severity: severity})
	}
	return out
}

func TestEvaluate(t *testing.T) {
	p := DefaultPolicy()
	healthy := Signals{Product: "urn:mesh:product:sales:orders", Domain: "sales", Meta: fullMeta(), Checks: checks(10, 0, "high"),
		LastSuccess: now.Add(-10 * time.Minute), RunsOK: 10, Consumers: 10, PrevConsumers: 8}
	tests := []struct {
		name          string
		mutate        func(*Signals)
		health, trust [2]float64 // inclusive ranges
		reason        string     // a reason must contain this
		violation     string
	}{
		{"all good", func(*Signals) {}, [2]float64{100, 100}, [2]float64{100, 100}, "", ""},
		{"3 of 12 checks failed", func(s *Signals) { s.Checks = checks(9, 3, "high") }, [2]float64{85, 90}, [2]float64{90, 97}, "3 of 12 checks failed on wh:sales.orders", ""},
		{"critical failures weigh more", func(s *Signals) {
			s.Checks = append(checks(9, 0, "low"), checks(0, 3, "critical")...)
		}, [2]float64{60, 70}, [2]float64{80, 90}, "(critical, FAIL)", ""},
		{"stale", func(s *Signals) { s.LastSuccess = now.Add(-2 * time.Hour) }, [2]float64{85, 90}, [2]float64{90, 97}, "last successful run 2h ago (SLO 1h)", ""},
		{"very stale", func(s *Signals) { s.LastSuccess = now.Add(-5 * time.Hour) }, [2]float64{75, 75}, [2]float64{85, 92}, "last successful run", ""},
		{"failing runs", func(s *Signals) { s.RunsOK, s.RunsFailed = 2, 8 }, [2]float64{80, 80}, [2]float64{90, 93}, "8 of 10 runs failed", ""},
		{"no signals at all", func(s *Signals) {
			s.Checks, s.LastSuccess, s.RunsOK = nil, time.Time{}, 0
		}, [2]float64{100, 100}, [2]float64{90, 100}, "", ""},
		{"bare metadata", func(s *Signals) { s.Meta = Metadata{Outputs: 1, Fields: 4} }, [2]float64{100, 100}, [2]float64{70, 80}, "policy requires owners, description, field_classification, slo", "description"},
		{"unused", func(s *Signals) { s.Consumers, s.PrevConsumers = 0, 3 }, [2]float64{100, 100}, [2]float64{65, 75}, "0 distinct consumers in the window (down from 3)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := healthy
			s.Meta.Tags = append([]string(nil), s.Meta.Tags...)
			tt.mutate(&s)
			got := Evaluate(s, &p, now)
			if got.Health < tt.health[0] || got.Health > tt.health[1] {
				t.Errorf("health = %g, want within %v", got.Health, tt.health)
			}
			if got.OwnTrust < tt.trust[0] || got.OwnTrust > tt.trust[1] {
				t.Errorf("own trust = %g, want within %v", got.OwnTrust, tt.trust)
			}
			if tt.reason != "" && !strings.Contains(strings.Join(got.Reasons, " | "), tt.reason) {
				t.Errorf("reasons %q lack %q", got.Reasons, tt.reason)
			}
			if tt.violation != "" && !strings.Contains(strings.Join(got.Violations, ","), tt.violation) {
				t.Errorf("violations %v lack %q", got.Violations, tt.violation)
			}
			names := map[string]bool{}
			for _, c := range got.Components {
				names[c.Name] = true
			}
			for _, n := range []string{"quality", "freshness", "runs", "health", "completeness", "adoption",
				"discoverable", "addressable", "understandable", "accessible", "trustworthy", "interoperable", "secure"} {
				if !names[n] {
					t.Errorf("component %s missing", n)
				}
			}
		})
	}
}

func TestApplyUpstream(t *testing.T) {
	tests := []struct {
		own      float64
		upstream map[string]float64
		want     float64
		reason   string
	}{
		{90, nil, 90, ""},
		{90, map[string]float64{"urn:mesh:product:a:x": 80}, 90, ""},
		{90, map[string]float64{"urn:mesh:product:a:x": 30, "urn:mesh:product:b:y": 60}, 45, "upstream a:x has trust 30: trust capped at 45"},
	}
	for _, tt := range tests {
		got, reason := ApplyUpstream(tt.own, tt.upstream, 15)
		if got != tt.want || !strings.Contains(reason, tt.reason) {
			t.Errorf("ApplyUpstream(%g, %v) = %g, %q; want %g, %q", tt.own, tt.upstream, got, reason, tt.want, tt.reason)
		}
	}
}

func TestBandHysteresis(t *testing.T) {
	b := Bands{Healthy: 75, Degraded: 50, Hysteresis: 5}
	tests := []struct {
		score float64
		prev  string
		want  string
	}{
		{80, "", Healthy}, {60, "", Degraded}, {10, "", Critical},
		{72, Healthy, Healthy}, {69, Healthy, Degraded}, {40, Healthy, Critical},
		{77, Degraded, Degraded}, {80, Degraded, Healthy}, {47, Degraded, Degraded}, {44, Degraded, Critical},
		{53, Critical, Critical}, {56, Critical, Degraded}, {90, Critical, Healthy},
	}
	for _, tt := range tests {
		if got := Band(tt.score, tt.prev, b); got != tt.want {
			t.Errorf("Band(%g, %q) = %s, want %s", tt.score, tt.prev, got, tt.want)
		}
	}
}

func TestPolicy(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr []string
	}{
		{"empty file keeps defaults", "", nil},
		{"domain override within bounds", "domains:\n  sales:\n    alert_threshold: 20\n    default_freshness: 2h\n    required_metadata: [tags]\n", nil},
		{"override outside bounds", "domains:\n  sales:\n    alert_threshold: 50\n    default_freshness: 10m\n",
			[]string{"domains.sales.alert_threshold 50 is outside the global bounds [5, 25]", "domains.sales.default_freshness 10m0s is outside"}},
		{"weights outside factor", "domains:\n  sales:\n    weights: {quality: 5, freshness: 0.25, runs: 0.25, health: 0.4, completeness: 0.3, adoption: 0.3}\n",
			[]string{"domains.sales.weights.quality 5 is outside [0.25, 1]"}},
		{"bad values", "bands: {healthy: 40, degraded: 60}\nalert_threshold: 0\nrequired_metadata: [colour]\nwindows: {quality: soon}\n",
			[]string{"not a duration"}},
		{"bad bands", "bands: {healthy: 40, degraded: 60}\nalert_threshold: 0\nrequired_metadata: [colour]\n",
			[]string{"bands: want 0 < degraded", "alert_threshold must be within", `unknown "colour"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "policy.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			p, err := LoadPolicy(path)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if p.Bands.Healthy != 75 {
					t.Fatalf("defaults lost: %+v", p.Bands)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
	p := DefaultPolicy()
	th := 20.0
	p.Domains = map[string]Override{"sales": {AlertThreshold: &th, RequiredMetadata: []string{"tags"}}}
	if e := p.For("sales"); e.AlertThreshold != 20 || len(e.RequiredMetadata) != 5 {
		t.Errorf("sales effective = %+v", e)
	}
	if e := p.For("finance"); e.AlertThreshold != 10 || len(e.RequiredMetadata) != 4 {
		t.Errorf("finance effective = %+v", e)
	}
}
