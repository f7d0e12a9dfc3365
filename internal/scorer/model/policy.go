// Package model is the score model: health and trust of a data product from
// its signals, each component visible with plain-language reasons, bands
// with hysteresis, and the policy (weights, windows, thresholds, required
// metadata) that parameterises it. It is pure: no I/O, no clocks; the scorer
// loads signals and calls it. docs/scoring.md explains it to product owners.
package model

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"gopkg.in/yaml.v3"
)

// Policy is the federated-governance file: global values, bounds within
// which a domain may override them, and the domains' overrides.
type Policy struct {
	Weights          Weights  `yaml:"weights"`
	Windows          Windows  `yaml:"windows"`
	Bands            Bands    `yaml:"bands"`
	AlertThreshold   float64  `yaml:"alert_threshold"`   // points a score must move to alert without a band change
	UpstreamMargin   float64  `yaml:"upstream_margin"`   // trust may exceed an upstream product's trust by this much per hop
	HealthMargin     float64  `yaml:"health_margin"`     // trust may exceed the product's own health by this much
	DefaultFreshness Duration `yaml:"default_freshness"` // freshness SLO of products that declare none
	// DefaultMinPassRate is the quality SLO of products that declare none.
	DefaultMinPassRate float64 `yaml:"default_min_pass_rate"`
	// ViolationPenalty is taken off completeness per missing required item.
	ViolationPenalty float64             `yaml:"violation_penalty"`
	AdoptionTarget   int                 `yaml:"adoption_target"`   // distinct consumers for full adoption
	SeverityWeights  map[string]float64  `yaml:"severity_weights"`  // weight of a check by severity
	RequiredMetadata []string            `yaml:"required_metadata"` // see RequiredFields
	Bounds           Bounds              `yaml:"bounds"`            // what domains may override, and how far
	Domains          map[string]Override `yaml:"domains"`           // per-domain overrides
}

// Weights of the components. Each group is normalised, so only ratios count.
type Weights struct {
	Quality      float64 `yaml:"quality"`
	Freshness    float64 `yaml:"freshness"`
	Runs         float64 `yaml:"runs"`
	Health       float64 `yaml:"health"`
	Completeness float64 `yaml:"completeness"`
	Adoption     float64 `yaml:"adoption"`
}

// Windows over which signals count.
type Windows struct {
	Quality  Duration `yaml:"quality"`
	Runs     Duration `yaml:"runs"`
	Adoption Duration `yaml:"adoption"`
}

// Bands are the lower bounds of healthy and degraded; below degraded is
// critical. A score must cross a border by Hysteresis points to change band.
type Bands struct {
	Healthy    float64 `yaml:"healthy"`
	Degraded   float64 `yaml:"degraded"`
	Hysteresis float64 `yaml:"hysteresis"`
}

// Bounds limit domain overrides.
type Bounds struct {
	AlertThreshold   [2]float64  `yaml:"alert_threshold"`
	DefaultFreshness [2]Duration `yaml:"default_freshness"`
	// WeightFactor bounds each overridden weight to [global/f, global*f].
	WeightFactor float64 `yaml:"weight_factor"`
}

// Override is what a domain may change. Required metadata can only be added.
type Override struct {
	Weights          *Weights  `yaml:"weights"`
	AlertThreshold   *float64  `yaml:"alert_threshold"`
	DefaultFreshness *Duration `yaml:"default_freshness"`
	RequiredMetadata []string  `yaml:"required_metadata"`
}

// Duration reads "24h" style values.
type Duration struct{ time.Duration }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 90s, 15m or 24h", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

// RequiredFields are the metadata a policy may require.
var RequiredFields = []string{"owners", "description", "tags", "documentation", "slo", "field_descriptions", "field_classification", "schema"}

// DefaultPolicy is used when no policy file is given; docs/scoring.md lists it.
func DefaultPolicy() Policy {
	return Policy{
		Weights:            Weights{Quality: 0.6, Freshness: 0.2, Runs: 0.2, Health: 0.4, Completeness: 0.3, Adoption: 0.3},
		Windows:            Windows{Quality: Duration{24 * time.Hour}, Runs: Duration{24 * time.Hour}, Adoption: Duration{7 * 24 * time.Hour}},
		Bands:              Bands{Healthy: 75, Degraded: 50, Hysteresis: 5},
		AlertThreshold:     10,
		UpstreamMargin:     15,
		HealthMargin:       20,
		DefaultFreshness:   Duration{24 * time.Hour},
		DefaultMinPassRate: 0.9,
		ViolationPenalty:   10,
		AdoptionTarget:     10,
		SeverityWeights:    map[string]float64{"low": 1, "medium": 2, "high": 3, "critical": 5},
		RequiredMetadata:   []string{"owners", "description", "field_classification", "slo"},
		Bounds: Bounds{
			AlertThreshold:   [2]float64{5, 25},
			DefaultFreshness: [2]Duration{{time.Hour}, {7 * 24 * time.Hour}},
			WeightFactor:     2,
		},
	}
}

// LoadPolicy reads a policy file over the defaults and validates it.
func LoadPolicy(path string) (Policy, error) {
	p := DefaultPolicy()
	if path == "" {
		return p, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Policy{}, fmt.Errorf("policy: %w", err)
	}
	if err := yaml.Unmarshal(b, &p); err != nil {
		return Policy{}, fmt.Errorf("policy %s: %w", path, err)
	}
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("policy %s is invalid:\n%w", path, err)
	}
	return p, nil
}

// Validate reports every problem at once, including domain overrides that
// leave the bounds.
func (p *Policy) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	checkWeights := func(where string, w Weights) {
		for name, v := range map[string]float64{"quality": w.Quality, "freshness": w.Freshness, "runs": w.Runs,
			"health": w.Health, "completeness": w.Completeness, "adoption": w.Adoption} {
			if v < 0 {
				bad("%sweights.%s must not be negative, got %g", where, name, v)
			}
		}
		if w.Quality+w.Freshness+w.Runs <= 0 {
			bad("%sweights: quality, freshness and runs must not all be zero", where)
		}
		if w.Health+w.Completeness+w.Adoption <= 0 {
			bad("%sweights: health, completeness and adoption must not all be zero", where)
		}
	}
	checkWeights("", p.Weights)
	if !(0 < p.Bands.Degraded && p.Bands.Degraded < p.Bands.Healthy && p.Bands.Healthy <= 100) {
		bad("bands: want 0 < degraded (%g) < healthy (%g) <= 100", p.Bands.Degraded, p.Bands.Healthy)
	}
	if p.Bands.Hysteresis < 0 || p.Bands.Hysteresis >= (p.Bands.Healthy-p.Bands.Degraded)/2 {
		bad("bands.hysteresis must be within [0, (healthy-degraded)/2), got %g", p.Bands.Hysteresis)
	}
	for name, d := range map[string]Duration{"quality": p.Windows.Quality, "runs": p.Windows.Runs, "adoption": p.Windows.Adoption} {
		if d.Duration <= 0 {
			bad("windows.%s must be positive", name)
		}
	}
	if p.AlertThreshold <= 0 || p.AlertThreshold > 100 {
		bad("alert_threshold must be within (0, 100], got %g", p.AlertThreshold)
	}
	if p.UpstreamMargin < 0 || p.UpstreamMargin > 100 {
		bad("upstream_margin must be within [0, 100], got %g", p.UpstreamMargin)
	}
	if p.HealthMargin < 0 || p.HealthMargin > 100 {
		bad("health_margin must be within [0, 100], got %g", p.HealthMargin)
	}
	if p.DefaultFreshness.Duration <= 0 {
		bad("default_freshness must be positive")
	}
	if p.DefaultMinPassRate <= 0 || p.DefaultMinPassRate > 1 {
		bad("default_min_pass_rate must be within (0, 1], got %g", p.DefaultMinPassRate)
	}
	if p.ViolationPenalty < 0 || p.ViolationPenalty > 100 {
		bad("violation_penalty must be within [0, 100], got %g", p.ViolationPenalty)
	}
	if p.AdoptionTarget < 1 {
		bad("adoption_target must be at least 1, got %d", p.AdoptionTarget)
	}
	for _, s := range []string{"low", "medium", "high", "critical"} {
		if p.SeverityWeights[s] <= 0 {
			bad("severity_weights.%s must be positive", s)
		}
	}
	checkRequired := func(where string, req []string) {
		for _, r := range req {
			if !slices.Contains(RequiredFields, r) {
				bad("%srequired_metadata: unknown %q (known: %v)", where, r, RequiredFields)
			}
		}
	}
	checkRequired("", p.RequiredMetadata)
	if p.Bounds.AlertThreshold[0] > p.Bounds.AlertThreshold[1] || p.Bounds.DefaultFreshness[0].Duration > p.Bounds.DefaultFreshness[1].Duration {
		bad("bounds: each [min, max] must have min <= max")
	}
	if p.Bounds.WeightFactor < 1 {
		bad("bounds.weight_factor must be at least 1, got %g", p.Bounds.WeightFactor)
	}
	domains := make([]string, 0, len(p.Domains))
	for d := range p.Domains {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	for _, d := range domains {
		o := p.Domains[d]
		where := "domains." + d + "."
		if o.AlertThreshold != nil && (*o.AlertThreshold < p.Bounds.AlertThreshold[0] || *o.AlertThreshold > p.Bounds.AlertThreshold[1]) {
			bad("%salert_threshold %g is outside the global bounds [%g, %g]", where, *o.AlertThreshold, p.Bounds.AlertThreshold[0], p.Bounds.AlertThreshold[1])
		}
		if f := o.DefaultFreshness; f != nil && (f.Duration < p.Bounds.DefaultFreshness[0].Duration || f.Duration > p.Bounds.DefaultFreshness[1].Duration) {
			bad("%sdefault_freshness %s is outside the global bounds [%s, %s]", where, f.Duration, p.Bounds.DefaultFreshness[0].Duration, p.Bounds.DefaultFreshness[1].Duration)
		}
		if w := o.Weights; w != nil {
			checkWeights(where, *w)
			f := p.Bounds.WeightFactor
			g := p.Weights
			for name, pair := range map[string][2]float64{"quality": {w.Quality, g.Quality}, "freshness": {w.Freshness, g.Freshness},
				"runs": {w.Runs, g.Runs}, "health": {w.Health, g.Health}, "completeness": {w.Completeness, g.Completeness}, "adoption": {w.Adoption, g.Adoption}} {
				if pair[0] < pair[1]/f || pair[0] > pair[1]*f {
					bad("%sweights.%s %g is outside [%g, %g] (global %g, weight_factor %g)", where, name, pair[0], pair[1]/f, pair[1]*f, pair[1], f)
				}
			}
		}
		checkRequired(where, o.RequiredMetadata)
	}
	slices.SortFunc(errs, func(a, b error) int {
		if a.Error() < b.Error() {
			return -1
		}
		return 1
	})
	return errors.Join(errs...)
}

// Effective is the policy for one domain, overrides applied.
type Effective struct {
	Weights            Weights
	AlertThreshold     float64
	DefaultFreshness   time.Duration
	DefaultMinPassRate float64
	RequiredMetadata   []string
}

// For returns the effective policy of a domain.
func (p *Policy) For(domain string) Effective {
	e := Effective{Weights: p.Weights, AlertThreshold: p.AlertThreshold, DefaultFreshness: p.DefaultFreshness.Duration,
		DefaultMinPassRate: p.DefaultMinPassRate, RequiredMetadata: p.RequiredMetadata}
	o, ok := p.Domains[domain]
	if !ok {
		return e
	}
	if o.Weights != nil {
		e.Weights = *o.Weights
	}
	if o.AlertThreshold != nil {
		e.AlertThreshold = *o.AlertThreshold
	}
	if o.DefaultFreshness != nil {
		e.DefaultFreshness = o.DefaultFreshness.Duration
	}
	for _, r := range o.RequiredMetadata {
		if !slices.Contains(e.RequiredMetadata, r) {
			e.RequiredMetadata = append(slices.Clone(e.RequiredMetadata), r)
		}
	}
	return e
}
