package model

import (
	"fmt"
	"math"
	"sort"
	"strconv"
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

// Partial is a product's score before lineage: health, its own trust, the
// components and reasons behind them, and the concrete signals that explain
// a problem (what a downstream product's root cause points at).
type Partial struct {
	Product, Domain string
	// HealthKnown is false when the product has no signal at all (no checks,
	// no runs): its health, own trust and bands are unknown, not 100.
	HealthKnown bool
	Health      float64
	OwnTrust    float64
	// HealthCap is the best health band allowed ("" for none): a breached
	// SLO or a failing critical check makes a product at most degraded.
	HealthCap  string
	Components []Component
	Reasons    []string
	// Problems are the concrete signals behind a low score: failing checks
	// by name, a stale run, failed runs, missing metadata.
	Problems   []string
	Violations []string
}

// Evaluate computes health and own trust from signals at time now.
func Evaluate(s Signals, p *Policy, now time.Time) Partial {
	pol := p.For(s.Domain)
	out := Partial{Product: s.Product, Domain: s.Domain}

	quality, qualityProblems, qualityCap := qualityComponent(s, p, pol)
	fresh, freshProblems, freshCap := freshnessComponent(s, pol, now)
	runs, runsProblems := runsComponent(s)
	quality.Weight, fresh.Weight, runs.Weight = pol.Weights.Quality, pol.Weights.Freshness, pol.Weights.Runs
	out.HealthKnown = quality.Known || fresh.Known || runs.Known
	out.Problems = append(append(append(out.Problems, qualityProblems...), freshProblems...), runsProblems...)
	health := Component{Name: "health", Weight: pol.Weights.Health, Known: out.HealthKnown, Detail: "quality, freshness and runs"}
	if out.HealthKnown {
		out.Health = weighted(quality, fresh, runs)
		if qualityCap != "" || freshCap != "" {
			// A stale product, or one failing its quality SLO or a critical
			// check, is not healthy whatever the weighted average says.
			out.HealthCap = Degraded
			if limit := p.Bands.Healthy - 1; out.Health > limit {
				out.Health = limit
			}
			out.Reasons = append(out.Reasons, "health capped below healthy: "+strings.Join(nonEmpty(qualityCap, freshCap), "; "))
		}
		health.Score = out.Health
	} else {
		health.Detail = "unknown: no quality checks and no runs yet"
		out.Reasons = append(out.Reasons, "no signals yet: no quality checks and no runs")
		out.Problems = append(out.Problems, "no quality checks and no runs yet")
	}

	characteristics, violations := completeness(s, pol)
	out.Violations = violations
	var sum float64
	for _, c := range characteristics {
		sum += c.Score
	}
	complete := Component{Name: "completeness", Weight: pol.Weights.Completeness, Known: true}
	complete.Score = sum / float64(len(characteristics))
	var weak []string
	for _, c := range characteristics {
		if c.Score < 100 {
			weak = append(weak, c.Name+" "+c.Detail)
		}
	}
	complete.Detail = "the seven characteristics of a data product are met"
	if len(weak) > 0 {
		complete.Detail = "lacking: " + strings.Join(weak, "; ")
	}
	if len(violations) > 0 {
		penalty := p.ViolationPenalty * float64(len(violations))
		complete.Score = math.Max(0, complete.Score-penalty)
		complete.Detail += fmt.Sprintf("; %.0f points off for %s the policy requires (%s)", penalty, plural(len(violations), "missing item", "missing items"), strings.Join(violations, ", "))
		out.Problems = append(out.Problems, "missing "+strings.Join(violations, ", "))
	}
	complete.Score = round1(complete.Score)
	adoption := adoptionComponent(s, p)
	adoption.Weight = pol.Weights.Adoption

	if out.HealthKnown {
		out.OwnTrust = weighted(health, complete, adoption)
		// A product that is not working now cannot be relied on, however
		// well documented and adopted: trust is capped a margin above health.
		if limit := out.Health + p.HealthMargin; out.OwnTrust > limit {
			out.OwnTrust = round1(limit)
			out.Reasons = append(out.Reasons, fmt.Sprintf("health %.0f caps trust at %.0f", out.Health, limit))
		}
	}

	out.Components = append([]Component{quality, fresh, runs, health, complete, adoption}, characteristics...)
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

// weighted averages the known components; unknown ones give their weight to
// the rest. The caller makes sure at least one is known.
func weighted(cs ...Component) float64 {
	var sum, weights float64
	for _, c := range cs {
		if c.Known {
			sum += c.Score * c.Weight
			weights += c.Weight
		}
	}
	if weights == 0 {
		return 0
	}
	return round1(sum / weights)
}

// qualityComponent scores the latest check results by severity. It also
// returns the failing checks by name and, when the pass rate is below the
// product's quality SLO (or the policy's default) or a critical check
// fails, why the health band is capped.
func qualityComponent(s Signals, p *Policy, pol Effective) (Component, []string, string) {
	c := Component{Name: "quality"}
	if len(s.Checks) == 0 {
		c.Detail = "unknown: no quality checks in the window"
		return c, nil, ""
	}
	var got, total float64
	failing := map[string][]string{}
	var nFail, nWarn int
	var criticalFailing []string
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
			nWarn++
		case "FAIL", "ERROR":
			nFail++
			failing[short(r.Dataset)] = append(failing[short(r.Dataset)], fmt.Sprintf("%s (%s, %s)", r.Check, r.Severity, r.Status))
			if r.Severity == "critical" {
				criticalFailing = append(criticalFailing, r.Check)
			}
		}
	}
	c.Known = true
	c.Score = round1(100 * got / total)
	rate := got / total
	minRate, declared := s.Meta.MinPassRate, true
	if minRate <= 0 {
		minRate, declared = pol.DefaultMinPassRate, false
	}
	sloText := "SLO " + percent(minRate)
	if !declared {
		sloText = "default " + percent(minRate) + ", no SLO declared"
	}
	var problems []string
	switch {
	case nFail == 0 && nWarn == 0:
		c.Detail = "all " + plural(len(s.Checks), "check", "checks") + " pass"
		if len(s.Checks) == 1 {
			c.Detail = "the 1 check passes"
		}
	case nFail == 0:
		c.Detail = fmt.Sprintf("%d of %s warn", nWarn, plural(len(s.Checks), "check", "checks"))
	default:
		var parts []string
		for _, ds := range sortedKeys(failing) {
			sort.Strings(failing[ds])
			parts = append(parts, ds+": "+strings.Join(failing[ds], ", "))
			problems = append(problems, "failing on "+ds+": "+strings.Join(failing[ds], ", "))
		}
		c.Detail = fmt.Sprintf("%d of %s failed on %s", nFail, plural(len(s.Checks), "check", "checks"), strings.Join(parts, "; "))
	}
	c.Detail += " (pass rate " + percent(rate) + ", " + sloText + ")"
	var caps []string
	if rate < minRate {
		caps = append(caps, fmt.Sprintf("quality pass rate %.0f%% below its %s", 100*rate, sloText))
	}
	if len(criticalFailing) > 0 {
		sort.Strings(criticalFailing)
		caps = append(caps, fmt.Sprintf("%s failing: %s", plural(len(criticalFailing), "critical check", "critical checks"), strings.Join(criticalFailing, ", ")))
	}
	return c, problems, strings.Join(caps, "; ")
}

// freshnessComponent scores the age of the last successful run against the
// freshness SLO; an age past the SLO caps the health band.
func freshnessComponent(s Signals, pol Effective, now time.Time) (Component, []string, string) {
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
		c.Detail = "unknown: no successful run recorded"
		return c, nil, ""
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
	c.Detail = "last successful run " + human(age) + " ago (" + sloText + ")"
	if age > slo {
		breach := fmt.Sprintf("last successful run %s ago, past its %s", human(age), sloText)
		return c, []string{breach}, breach
	}
	return c, nil, ""
}

func runsComponent(s Signals) (Component, []string) {
	c := Component{Name: "runs"}
	n := s.RunsOK + s.RunsFailed
	if n == 0 {
		c.Detail = "unknown: no finished runs in the window"
		return c, nil
	}
	c.Known = true
	c.Score = round1(100 * float64(s.RunsOK) / float64(n))
	if s.RunsFailed == 0 {
		c.Detail = "all " + plural(n, "run", "runs") + " succeeded"
		if n == 1 {
			c.Detail = "the 1 run succeeded"
		}
		return c, nil
	}
	c.Detail = fmt.Sprintf("%d of %s failed", s.RunsFailed, plural(n, "run", "runs"))
	return c, []string{c.Detail}
}

func adoptionComponent(s Signals, p *Policy) Component {
	c := Component{Name: "adoption", Known: true}
	target := float64(p.AdoptionTarget)
	c.Score = round1(math.Min(100, 100*math.Log2(1+float64(s.Consumers))/math.Log2(1+target)))
	trend := "steady"
	switch {
	case s.Consumers > s.PrevConsumers:
		trend = "up from " + strconv.Itoa(s.PrevConsumers)
	case s.Consumers < s.PrevConsumers:
		trend = "down from " + strconv.Itoa(s.PrevConsumers)
	}
	c.Detail = plural(s.Consumers, "distinct consumer", "distinct consumers") + " in the window (" + trend + ")"
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
	part := func(ok bool, points float64) float64 {
		if ok {
			return points
		}
		return 0
	}
	char := func(name string, score float64, detail string) Component {
		return Component{Name: name, Score: round1(score), Known: true, Detail: detail}
	}
	// The details are concatenated rather than formatted: this runs for
	// every product on every pass, and fmt was a sixth of a full pass.
	fieldsText := func(n int, what string) string {
		return strconv.Itoa(n) + " of " + plural(m.Fields, "field", "fields") + " " + what
	}
	cs := []Component{
		char("discoverable", part(m.Description != "", 40)+part(len(m.Tags) > 0, 30)+part(len(m.Owners) > 0, 30),
			"description "+yesNo(m.Description != "")+", "+plural(len(m.Tags), "tag", "tags")+", "+plural(len(m.Owners), "owner", "owners")),
		char("addressable", 50+part(m.Outputs > 0, 50), "canonical urn, "+plural(m.Outputs, "output dataset", "output datasets")),
		char("understandable", 100*frac(m.FieldsDescribed, m.Fields), fieldsText(m.FieldsDescribed, "described")),
		char("accessible", part(m.AccessNotes != "" || m.DocumentationURL != "", 100), "access notes or documentation "+yesNo(m.AccessNotes != "" || m.DocumentationURL != "")),
		char("trustworthy", part(m.HasSLO, 50)+part(len(s.Checks) > 0, 50), "SLO "+yesNo(m.HasSLO)+", "+plural(len(s.Checks), "check", "checks")+" running"),
		char("interoperable", 50*frac(m.OutputsWithSchema, m.Outputs)+50*frac(m.FieldsSnakeCase, m.Fields),
			strconv.Itoa(m.OutputsWithSchema)+" of "+plural(m.Outputs, "output", "outputs")+" with a registered schema, "+fieldsText(m.FieldsSnakeCase, "snake_case")),
		char("secure", 100*frac(m.FieldsClassified, m.Fields), fieldsText(m.FieldsClassified, "classified")+", "+strconv.Itoa(m.PIIFields)+" marked PII"),
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

func short(urn string) string {
	for _, p := range []string{"urn:mesh:dataset:", "urn:mesh:product:", "urn:mesh:job:"} {
		if s, ok := strings.CutPrefix(urn, p); ok {
			return s
		}
	}
	return urn
}

// Short renders a URN without its urn:mesh:<kind>: prefix.
func Short(urn string) string { return short(urn) }

// percent renders a fraction as a whole percentage, as %.0f%% would.
func percent(f float64) string { return strconv.FormatFloat(100*f, 'f', 0, 64) + "%" }

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

// plural renders "1 check", "3 checks", "0 checks".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
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
