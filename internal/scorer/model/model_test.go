package model

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// badPlural finds "1 checks", "all 1 runs" and the like.
var badPlural = regexp.MustCompile(`(^|[^0-9])1 (checks|runs|tags|owners|fields|outputs|output datasets|distinct consumers)\b|all 1 `)

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
		known         bool
		health, trust [2]float64 // inclusive ranges
		capped        bool       // the health band is capped at degraded
		reason        string     // a reason must contain this
		problem       string     // a problem (root-cause signal) must contain this
		violation     string
	}{
		{"all good", func(*Signals) {}, true, [2]float64{100, 100}, [2]float64{100, 100}, false, "", "", ""},
		{"one of twelve medium checks fails: within the 90% default SLO", func(s *Signals) { s.Checks = append(checks(11, 0, "medium"), checks(0, 1, "low")...) },
			true, [2]float64{95, 99}, [2]float64{97, 100}, false, "1 of 12 checks failed on wh:sales.orders", "failing on wh:sales.orders", ""},
		{"3 of 12 checks fail: below the default 90% pass rate", func(s *Signals) { s.Checks = checks(9, 3, "high") },
			true, [2]float64{74, 74}, [2]float64{85, 94}, true, "quality pass rate 75% below its default 90%", "cj (high, FAIL)", ""},
		{"half the checks fail", func(s *Signals) { s.Checks = checks(2, 2, "medium") },
			true, [2]float64{70, 70}, [2]float64{80, 90}, true, "below its default 90%", "", ""},
		{"a failing critical check caps the band", func(s *Signals) {
			s.Checks = append(checks(30, 0, "low"), checks(0, 1, "critical")...)
		}, true, [2]float64{74, 74}, [2]float64{80, 94}, true, "critical check failing: ca", "(critical, FAIL)", ""},
		{"critical check and 69% pass rate against a 95% SLO", func(s *Signals) {
			s.Meta.MinPassRate = 0.95
			s.Checks = append(checks(4, 1, "high"), checks(0, 1, "critical")...)
		}, true, [2]float64{60, 74}, [2]float64{70, 94}, true, "pass rate 60% below its SLO 95%", "", ""},
		{"stale past the SLO: 2h against 1h", func(s *Signals) { s.LastSuccess = now.Add(-2 * time.Hour) },
			true, [2]float64{74, 74}, [2]float64{85, 94}, true, "last successful run 2h ago, past its SLO 1h", "last successful run 2h ago", ""},
		{"stale 5h against 1h, checks passing", func(s *Signals) { s.LastSuccess = now.Add(-5 * time.Hour) },
			true, [2]float64{74, 74}, [2]float64{80, 94}, true, "past its SLO 1h", "", ""},
		{"failing runs", func(s *Signals) { s.RunsOK, s.RunsFailed = 2, 8 },
			true, [2]float64{84, 84}, [2]float64{90, 94}, false, "8 of 10 runs failed", "8 of 10 runs failed", ""},
		{"the one run succeeded", func(s *Signals) { s.RunsOK = 1 }, true, [2]float64{100, 100}, [2]float64{100, 100}, false, "", "", ""},
		{"no signals at all is unknown, not 100", func(s *Signals) {
			s.Checks, s.LastSuccess, s.RunsOK = nil, time.Time{}, 0
		}, false, [2]float64{0, 0}, [2]float64{0, 0}, false, "no signals yet", "no quality checks and no runs yet", ""},
		{"bare metadata", func(s *Signals) { s.Meta = Metadata{Outputs: 1, Fields: 4} }, true, [2]float64{100, 100}, [2]float64{60, 70}, false,
			"policy requires owners, description, field_classification, slo", "missing owners, description, field_classification, slo", "description"},
		{"missing owners lowers completeness", func(s *Signals) { s.Meta.Owners = nil }, true, [2]float64{100, 100}, [2]float64{95, 97}, false,
			"policy requires owners", "missing owners", "owners"},
		{"one consumer", func(s *Signals) { s.Consumers, s.PrevConsumers = 1, 1 }, true, [2]float64{100, 100}, [2]float64{70, 90}, false,
			"1 distinct consumer in the window (steady)", "", ""},
		{"unused", func(s *Signals) { s.Consumers, s.PrevConsumers = 0, 3 }, true, [2]float64{100, 100}, [2]float64{65, 75}, false,
			"0 distinct consumers in the window (down from 3)", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := healthy
			s.Meta.Tags = append([]string(nil), s.Meta.Tags...)
			tt.mutate(&s)
			got := Evaluate(s, &p, now)
			if got.HealthKnown != tt.known {
				t.Fatalf("health known = %v, want %v", got.HealthKnown, tt.known)
			}
			if got.Health < tt.health[0] || got.Health > tt.health[1] {
				t.Errorf("health = %g, want within %v", got.Health, tt.health)
			}
			if got.OwnTrust < tt.trust[0] || got.OwnTrust > tt.trust[1] {
				t.Errorf("own trust = %g, want within %v", got.OwnTrust, tt.trust)
			}
			if (got.HealthCap == Degraded) != tt.capped {
				t.Errorf("health cap = %q, want capped %v", got.HealthCap, tt.capped)
			}
			if tt.reason != "" && !strings.Contains(strings.Join(got.Reasons, " | "), tt.reason) {
				t.Errorf("reasons %q lack %q", got.Reasons, tt.reason)
			}
			if tt.problem != "" && !strings.Contains(strings.Join(got.Problems, " | "), tt.problem) {
				t.Errorf("problems %q lack %q", got.Problems, tt.problem)
			}
			if tt.violation != "" && !strings.Contains(strings.Join(got.Violations, ","), tt.violation) {
				t.Errorf("violations %v lack %q", got.Violations, tt.violation)
			}
			names := map[string]bool{}
			for _, c := range got.Components {
				names[c.Name] = true
				if badPlural.MatchString(c.Detail) {
					t.Errorf("plural wrong in %s: %q", c.Name, c.Detail)
				}
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

// graph is a product graph for propagation tests: edges upstream -> downstream.
type graph map[string][]string

func (g graph) DirectDownstream(p string) []string { return g[p] }
func (g graph) DirectUpstream(p string) []string {
	var out []string
	for u, ds := range g {
		for _, d := range ds {
			if d == p {
				out = append(out, u)
			}
		}
	}
	return out
}

func TestPropagate(t *testing.T) {
	known := func(v float64) Own { return Own{Trust: v, Known: true} }
	tests := []struct {
		name string
		g    graph
		own  map[string]Own
		want map[string]Flow
	}{
		{"a chain: the cap grows by the margin per hop",
			graph{"a": {"b"}, "b": {"c"}},
			map[string]Own{"a": known(30), "b": known(90), "c": known(95)},
			map[string]Flow{"a": {30, true, "a", 0}, "b": {45, true, "a", 1}, "c": {60, true, "a", 2}}},
		{"the worse of two upstreams",
			graph{"a": {"c"}, "b": {"c"}},
			map[string]Own{"a": known(80), "b": known(40), "c": known(90)},
			map[string]Flow{"c": {55, true, "b", 1}}},
		{"own trust lower than the cap",
			graph{"a": {"b"}},
			map[string]Own{"a": known(90), "b": known(50)},
			map[string]Flow{"b": {50, true, "b", 0}}},
		{"a cycle reaches a true fixed point",
			graph{"a": {"b"}, "b": {"c"}, "c": {"a"}},
			map[string]Own{"a": known(20), "b": known(90), "c": known(90)},
			map[string]Flow{"a": {20, true, "a", 0}, "b": {35, true, "a", 1}, "c": {50, true, "a", 2}}},
		{"an unknown product passes its upstream's cap on",
			graph{"a": {"b"}, "b": {"c"}},
			map[string]Own{"a": known(10), "c": known(100)},
			map[string]Flow{"b": {25, true, "a", 1}, "c": {40, true, "a", 2}}},
		{"nothing known", graph{"a": {"b"}}, map[string]Own{}, map[string]Flow{"a": {0, false, "a", 0}, "b": {0, false, "b", 0}}},
		{"a tie with an upstream cap: the product's own limit",
			graph{"a": {"c"}, "b": {"c"}},
			map[string]Own{"a": known(50), "b": known(50), "c": known(65)},
			map[string]Flow{"c": {65, true, "c", 0}}},
		{"a tie between upstreams: the smaller name",
			graph{"b": {"c"}, "a": {"c"}},
			map[string]Own{"a": known(50), "b": known(50), "c": known(90)},
			map[string]Flow{"c": {65, true, "a", 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var set []string
			seen := map[string]bool{}
			for u, ds := range tt.g {
				for _, p := range append([]string{u}, ds...) {
					if !seen[p] {
						seen[p] = true
						set = append(set, p)
					}
				}
			}
			l := NewLineage(set, tt.g.DirectUpstream)
			flows := make([]Flow, l.Len())
			l.Propagate(nil, func(i int32) Own { return tt.own[l.Names[i]] }, flows, 15)
			for p, w := range tt.want {
				i, _ := l.Index(p)
				if flows[i] != w {
					t.Errorf("%s: %+v, want %+v", p, flows[i], w)
				}
			}
		})
	}
	// Incrementally: a's own trust changes; a and everything downstream of
	// it are recomputed, the rest of the flows are the boundary.
	g := graph{"a": {"b"}, "b": {"c"}, "x": {"c"}}
	l := NewLineage([]string{"a", "b", "c", "x"}, g.DirectUpstream)
	own := map[string]Own{"a": known(90), "b": known(95), "c": known(99), "x": known(70)}
	flows := make([]Flow, l.Len())
	l.Propagate(nil, func(i int32) Own { return own[l.Names[i]] }, flows, 15)
	own["a"] = known(30)
	ia, _ := l.Index("a")
	l.Propagate(l.Downstream([]int32{ia}), func(i int32) Own { return own[l.Names[i]] }, flows, 15)
	ic, _ := l.Index("c")
	if w := (Flow{60, true, "a", 2}); flows[ic] != w {
		t.Errorf("incremental: %+v, want %+v", flows[ic], w)
	}
	own["a"] = known(100)
	l.Propagate(l.Downstream([]int32{ia}), func(i int32) Own { return own[l.Names[i]] }, flows, 15)
	if w := (Flow{85, true, "x", 1}); flows[ic] != w {
		t.Errorf("after recovery: %+v, want %+v (x's cap, outside the recomputed set)", flows[ic], w)
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
			[]string{"domains.sales.weights.quality 5 is outside [0.3, 1.2]"}},
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

func BenchmarkEvaluate(b *testing.B) {
	p := DefaultPolicy()
	s := Signals{Product: "urn:mesh:product:sales:orders", Domain: "sales", Meta: fullMeta(), Checks: checks(2, 1, "high"),
		LastSuccess: now.Add(-10 * time.Minute), RunsOK: 1, Consumers: 8, PrevConsumers: 10}
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(s, &p, now)
	}
}
