package score

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Signals is everything the model knows of one product.
type Signals struct {
	Product string
	Domain  string
	Meta    Metadata
	// Checks holds the latest result of each check on each output dataset
	// within the quality window.
	Checks []CheckResult
	// LastSuccess is the last COMPLETE run writing an output (zero: none).
	LastSuccess time.Time
	// RunsOK and RunsFailed count distinct runs in the runs window.
	RunsOK, RunsFailed int
	// Consumers counts distinct consumers in the adoption window,
	// PrevConsumers in the window before it (for the trend).
	Consumers, PrevConsumers int
}

// Metadata is what completeness is judged on.
type Metadata struct {
	Description       string
	Tags              []string
	Owners            []string
	DocumentationURL  string
	AccessNotes       string
	FreshnessSLO      time.Duration // 0: not declared
	MinPassRate       float64       // 0: not declared
	HasSLO            bool
	Outputs           int
	OutputsWithSchema int
	Fields            int
	FieldsDescribed   int
	FieldsClassified  int
	FieldsSnakeCase   int
	PIIFields         int
}

// CheckResult is the latest outcome of one check.
type CheckResult struct {
	Dataset, Check, Status, Severity string
}

// Component is one visible part of a score.
type Component struct {
	Name   string
	Score  float64
	Weight float64 // 0 for components shown but not weighted
	Known  bool    // false: no signal; its weight went to the others
	Detail string
}

// Partial is a product's score before lineage: health, its own trust, and
// the components and reasons behind them.
type Partial struct {
	Product, Domain string
	Health          float64
	OwnTrust        float64
	Components      []Component
	Reasons         []string
	Violations      []string
}

// Evaluate computes health and own trust from signals at time now.
func Evaluate(s Signals, p *Policy, now time.Time) Partial {
	pol := p.For(s.Domain)
	out := Partial{Product: s.Product, Domain: s.Domain}

	quality := qualityComponent(s, p)
	fresh := freshnessComponent(s, pol, now)
	runs := runsComponent(s)
	out.Health = weighted(
		weightedPart{quality, pol.Weights.Quality},
		weightedPart{fresh, pol.Weights.Freshness},
		weightedPart{runs, pol.Weights.Runs},
	)
	quality.Weight, fresh.Weight, runs.Weight = pol.Weights.Quality, pol.Weights.Freshness, pol.Weights.Runs

	characteristics, violations := completeness(s, pol)
	var sum float64
	for _, c := range characteristics {
		sum += c.Score
	}
	complete := Component{Name: "completeness", Score: round1(sum / float64(len(characteristics))), Known: true}
	var weak []string
	for _, c := range characteristics {
		if c.Score < 100 {
			weak = append(weak, c.Name+" "+c.Detail)
		}
	}
	complete.Detail = "seven characteristics of a data product"
	if len(weak) > 0 {
		complete.Detail = "lacking: " + strings.Join(weak, "; ")
	}
	adoption := adoptionComponent(s, p)
	health := Component{Name: "health", Score: out.Health, Known: true, Detail: "quality, freshness and runs"}
	out.OwnTrust = weighted(
		weightedPart{health, pol.Weights.Health},
		weightedPart{complete, pol.Weights.Completeness},
		weightedPart{adoption, pol.Weights.Adoption},
	)
	// A product that is not working now cannot be relied on, however well
	// documented and adopted: trust is capped a margin above health.
	if limit := out.Health + p.HealthMargin; out.OwnTrust > limit {
		out.OwnTrust = round1(limit)
		out.Reasons = append(out.Reasons, fmt.Sprintf("health %.0f caps trust at %.0f", out.Health, limit))
	}
	health.Weight, complete.Weight, adoption.Weight = pol.Weights.Health, pol.Weights.Completeness, pol.Weights.Adoption

	out.Components = append([]Component{quality, fresh, runs, health, complete, adoption}, characteristics...)
	out.Violations = violations
	for _, c := range []Component{quality, fresh, runs} {
		if c.Known && c.Score < 100 {
			out.Reasons = append(out.Reasons, c.Detail)
		}
	}
	if adoption.Score < 50 {
		out.Reasons = append(out.Reasons, adoption.Detail)
	}
	if len(violations) > 0 {
		out.Reasons = append(out.Reasons, "policy requires "+strings.Join(violations, ", "))
	}
	return out
}

type weightedPart struct {
	c Component
	w float64
}

// weighted averages the known components; unknown ones give their weight to
// the rest. With nothing known the result is 100: no evidence of trouble.
func weighted(parts ...weightedPart) float64 {
	var sum, weights float64
	for _, p := range parts {
		if p.c.Known {
			sum += p.c.Score * p.w
			weights += p.w
		}
	}
	if weights == 0 {
		return 100
	}
	return round1(sum / weights)
}

func qualityComponent(s Signals, p *Policy) Component {
	c := Component{Name: "quality"}
	if len(s.Checks) == 0 {
		c.Detail = "no quality checks in the window"
		return c
	}
	var got, total float64
	failing := map[string][]string{}
	var nFail, nWarn int
	for _, r := range s.Checks {
		w := p.SeverityWeights[r.Severity]
		if w == 0 {
			w = p.SeverityWeights["medium"]
		}
		total += w
		switch r.Status {
		case "PASS":
			got += w
		case "WARN":
			got += w / 2
		}
		if r.Status == "WARN" {
			nWarn++
		}
		if r.Status == "FAIL" || r.Status == "ERROR" {
			nFail++
			failing[short(r.Dataset)] = append(failing[short(r.Dataset)], fmt.Sprintf("%s (%s, %s)", r.Check, r.Severity, r.Status))
		}
	}
	c.Known = true
	c.Score = round1(100 * got / total)
	switch {
	case nFail == 0 && nWarn == 0:
		c.Detail = fmt.Sprintf("all %d checks pass", len(s.Checks))
		return c
	case nFail == 0:
		c.Detail = fmt.Sprintf("%d of %d checks warn", nWarn, len(s.Checks))
		return c
	}
	var parts []string
	for _, ds := range sortedKeys(failing) {
		sort.Strings(failing[ds])
		parts = append(parts, ds+": "+strings.Join(failing[ds], ", "))
	}
	c.Detail = fmt.Sprintf("%d of %d checks failed on %s", nFail, len(s.Checks), strings.Join(parts, "; "))
	if s.Meta.MinPassRate > 0 {
		if rate := got / total; rate < s.Meta.MinPassRate {
			c.Detail += fmt.Sprintf(" (pass rate %.0f%%, SLO %.0f%%)", 100*rate, 100*s.Meta.MinPassRate)
		}
	}
	return c
}

func freshnessComponent(s Signals, pol Effective, now time.Time) Component {
	c := Component{Name: "freshness"}
	slo, declared := s.Meta.FreshnessSLO, true
	if slo <= 0 {
		slo, declared = pol.DefaultFreshness, false
	}
	sloText := "SLO " + human(slo)
	if !declared {
		sloText = "default " + human(slo) + ", no SLO declared"
	}
	if s.LastSuccess.IsZero() {
		c.Detail = "no successful run recorded"
		return c
	}
	c.Known = true
	age := now.Sub(s.LastSuccess)
	switch {
	case age <= slo:
		c.Score = 100
	case age >= 3*slo:
		c.Score = 0
	default:
		c.Score = round1(100 * (1 - float64(age-slo)/float64(2*slo)))
	}
	c.Detail = fmt.Sprintf("last successful run %s ago (%s)", human(age), sloText)
	return c
}

func runsComponent(s Signals) Component {
	c := Component{Name: "runs"}
	n := s.RunsOK + s.RunsFailed
	if n == 0 {
		c.Detail = "no finished runs in the window"
		return c
	}
	c.Known = true
	c.Score = round1(100 * float64(s.RunsOK) / float64(n))
	c.Detail = fmt.Sprintf("%d of %d runs failed", s.RunsFailed, n)
	if s.RunsFailed == 0 {
		c.Detail = fmt.Sprintf("all %d runs succeeded", n)
	}
	return c
}

func adoptionComponent(s Signals, p *Policy) Component {
	c := Component{Name: "adoption", Known: true}
	target := float64(p.AdoptionTarget)
	c.Score = round1(math.Min(100, 100*math.Log2(1+float64(s.Consumers))/math.Log2(1+target)))
	trend := "steady"
	switch {
	case s.Consumers > s.PrevConsumers:
		trend = fmt.Sprintf("up from %d", s.PrevConsumers)
	case s.Consumers < s.PrevConsumers:
		trend = fmt.Sprintf("down from %d", s.PrevConsumers)
	}
	c.Detail = fmt.Sprintf("%d distinct consumers in the window (%s)", s.Consumers, trend)
	return c
}

// completeness judges the seven characteristics of data as a product and
// lists the policy's required metadata that is missing.
func completeness(s Signals, pol Effective) ([]Component, []string) {
	m := s.Meta
	frac := func(n, of int) float64 {
		if of == 0 {
			return 0
		}
		return float64(n) / float64(of)
	}
	half := func(ok bool) float64 {
		if ok {
			return 50
		}
		return 0
	}
	char := func(name string, score float64, detail string) Component {
		return Component{Name: name, Score: round1(score), Known: true, Detail: detail}
	}
	fieldsText := func(n int, what string) string { return fmt.Sprintf("%d of %d fields %s", n, m.Fields, what) }
	cs := []Component{
		char("discoverable", half(m.Description != "")+half(len(m.Tags) > 0), fmt.Sprintf("description %s, %d tags", yesNo(m.Description != ""), len(m.Tags))),
		char("addressable", 50+half(m.Outputs > 0), fmt.Sprintf("canonical urn, %d output datasets", m.Outputs)),
		char("understandable", 100*frac(m.FieldsDescribed, m.Fields), fieldsText(m.FieldsDescribed, "described")),
		char("accessible", 2*half(m.AccessNotes != "" || m.DocumentationURL != ""), "access notes or documentation "+yesNo(m.AccessNotes != "" || m.DocumentationURL != "")),
		char("trustworthy", half(m.HasSLO)+half(len(s.Checks) > 0), fmt.Sprintf("SLO %s, %d checks running", yesNo(m.HasSLO), len(s.Checks))),
		char("interoperable", 50*frac(m.OutputsWithSchema, m.Outputs)+50*frac(m.FieldsSnakeCase, m.Fields),
			fmt.Sprintf("%d of %d outputs with a registered schema, %s", m.OutputsWithSchema, m.Outputs, fieldsText(m.FieldsSnakeCase, "snake_case"))),
		char("secure", 100*frac(m.FieldsClassified, m.Fields), fieldsText(m.FieldsClassified, "classified")+fmt.Sprintf(", %d marked PII", m.PIIFields)),
	}
	var missing []string
	for _, r := range pol.RequiredMetadata {
		ok := true
		switch r {
		case "owners":
			ok = len(m.Owners) > 0
		case "description":
			ok = m.Description != ""
		case "tags":
			ok = len(m.Tags) > 0
		case "documentation":
			ok = m.DocumentationURL != ""
		case "slo":
			ok = m.HasSLO
		case "field_descriptions":
			ok = m.Fields > 0 && m.FieldsDescribed == m.Fields
		case "field_classification":
			ok = m.Fields > 0 && m.FieldsClassified == m.Fields
		case "schema":
			ok = m.Outputs > 0 && m.OutputsWithSchema == m.Outputs
		}
		if !ok {
			missing = append(missing, r)
		}
	}
	return cs, missing
}

// ApplyUpstream caps own trust by the trust of the direct upstream products
// (each already capped by its own upstream, so the cap is transitive): a
// product cannot be trusted more than margin points above what it is built from.
func ApplyUpstream(own float64, upstream map[string]float64, margin float64) (trust float64, reason string) {
	trust = own
	var worst string
	for _, u := range sortedKeys(upstream) {
		if c := upstream[u] + margin; c < trust {
			trust, worst = c, u
		}
	}
	if worst != "" {
		reason = fmt.Sprintf("upstream %s has trust %.0f: trust capped at %.0f", short(worst), upstream[worst], trust)
	}
	return round1(trust), reason
}

// Band names.
const (
	Healthy  = "healthy"
	Degraded = "degraded"
	Critical = "critical"
)

var bandRank = map[string]int{Critical: 0, Degraded: 1, Healthy: 2}

// Band places a score in a band. With a previous band, the score must pass
// a border by the hysteresis to leave it, so scores near a border do not flap.
func Band(score float64, prev string, b Bands) string {
	raw := rawBand(score, b)
	if prev == "" || raw == prev {
		return raw
	}
	if bandRank[raw] > bandRank[prev] {
		// Improving: the score must clear the border by the hysteresis.
		if cand := rawBand(score-b.Hysteresis, b); bandRank[cand] > bandRank[prev] {
			return cand
		}
		return prev
	}
	// Worsening: the score must fall the hysteresis below the border.
	if cand := rawBand(score+b.Hysteresis, b); bandRank[cand] < bandRank[prev] {
		return cand
	}
	return prev
}

func rawBand(score float64, b Bands) string {
	switch {
	case score >= b.Healthy:
		return Healthy
	case score >= b.Degraded:
		return Degraded
	}
	return Critical
}

func short(urn string) string {
	for _, p := range []string{"urn:mesh:dataset:", "urn:mesh:product:", "urn:mesh:job:"} {
		if s, ok := strings.CutPrefix(urn, p); ok {
			return s
		}
	}
	return urn
}

func human(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%.0fd", d.Hours()/24)
	case d >= time.Hour:
		return fmt.Sprintf("%gh", math.Round(d.Hours()*10)/10)
	case d >= 2*time.Minute:
		return fmt.Sprintf("%.0fm", d.Minutes())
	}
	return fmt.Sprintf("%.0fs", d.Seconds())
}

func yesNo(b bool) string {
	if b {
		return "present"
	}
	return "missing"
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
