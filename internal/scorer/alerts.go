package scorer

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/meshpulse/meshpulse/internal/scorer/model"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// Emitter is the emitter name of score events.
const Emitter = "scorer"

// Headers of a published ScoreChanged.
const (
	HeaderReplica = "mesh.scorer.replica"
	HeaderGroup   = "mesh.scorer.group"
)

// eventIDSpace namespaces the deterministic ScoreChanged ids.
var eventIDSpace = uuid.MustParse("8f0b6d5e-3c1a-4f7e-9a52-6d1c0e2b7a41")

// lastAlert is what the scorer keeps of a product's last published
// ScoreChanged: enough to decide the next one.
type lastAlert struct {
	eventID               string
	health, trust         *float64
	healthBand, trustBand string
}

func lastOf(ev *events.ScoreChanged) *lastAlert {
	return &lastAlert{eventID: ev.EventID, health: ev.NewHealth, trust: ev.NewTrust, healthBand: ev.NewHealthBand, trustBand: ev.NewTrustBand}
}

// verdict is a product's score as this replica publishes it.
type verdict struct {
	product, domain       string
	healthKnown           bool
	health, trust         float64
	ownTrust              float64
	healthBand, trustBand string
	partial               model.Partial
	reasons               []string
	causes                []events.RootCause
	cause                 string // the short cause of a change
}

// bands turns a product's numbers into bands: with hysteresis against its
// last published alert, the health band capped by a breached SLO or a
// failing critical check, and the trust band never better than the health
// band.
func bands(part model.Partial, trust float64, last *lastAlert, b model.Bands) (health, trustBand string) {
	if !part.HealthKnown {
		return model.Unknown, model.Unknown
	}
	var prevH, prevT string
	if last != nil {
		prevH, prevT = last.healthBand, last.trustBand
	}
	health = model.AtMost(model.Band(part.Health, prevH, b), part.HealthCap)
	trustBand = model.AtMost(model.Band(trust, prevT, b), health)
	return health, trustBand
}

// alertFor decides whether a verdict is news against the product's last
// alert: a band change (a product's first known band included), or a score
// that moved more than the threshold. Unknown after unknown, or nothing
// moving, is not news. The decision depends only on the last alert and the
// verdict, so whichever replica owns the product decides the same.
func alertFor(v verdict, last *lastAlert, threshold float64, now time.Time) *events.ScoreChanged {
	ev := &events.ScoreChanged{
		Envelope:   events.Envelope{EventTime: now.Truncate(time.Millisecond), Emitter: Emitter},
		ProductURN: v.product, Domain: v.domain,
		NewHealthBand: v.healthBand, NewTrustBand: v.trustBand,
		Reasons: v.reasons, RootCauses: v.causes,
	}
	if v.healthKnown {
		ev.NewHealth, ev.NewTrust = ptr(v.health), ptr(v.trust)
	}
	for _, c := range v.partial.Components {
		ev.Components = append(ev.Components, events.ScoreComponent{Name: c.Name, Score: c.Score, Weight: c.Weight, Detail: c.Detail})
	}
	prevID := ""
	switch {
	case last == nil && !v.healthKnown:
		return nil // nothing known, nothing said before
	case last == nil:
		ev.Cause = "first score: " + v.healthBand
		if v.cause != "" && v.healthBand != model.Healthy {
			ev.Cause += "; " + v.cause
		}
	default:
		same := last.healthBand == v.healthBand && last.trustBand == v.trustBand &&
			near(last.health, ev.NewHealth, threshold) && near(last.trust, ev.NewTrust, threshold)
		if same {
			return nil
		}
		prevID = last.eventID
		ev.OldHealth, ev.OldTrust = last.health, last.trust
		ev.OldHealthBand, ev.OldTrustBand = last.healthBand, last.trustBand
		ev.Cause = changeCause(last, v)
	}
	// Deterministic: the same transition from the same previous alert gets
	// the same id, so a replayed or duplicated scorer cannot alert twice.
	key := fmt.Sprintf("%s|%s|%s|%s|%s|%s", v.product, prevID, num(ev.NewHealth), num(ev.NewTrust), v.healthBand, v.trustBand)
	ev.EventID = uuid.NewSHA1(eventIDSpace, []byte(key)).String()
	return ev
}

// near reports whether two optional scores are within the threshold (two
// unknowns are; an unknown and a known are not).
func near(a, b *float64, threshold float64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return math.Abs(*a-*b) <= threshold
}

func num(v *float64) string {
	if v == nil {
		return "unknown"
	}
	return fmt.Sprintf("%.1f", *v)
}

func changeCause(last *lastAlert, v verdict) string {
	worse := model.Worse(v.healthBand, last.healthBand) || model.Worse(v.trustBand, last.trustBand) ||
		(last.trust != nil && v.healthKnown && v.trust < *last.trust) ||
		(last.health != nil && v.healthKnown && v.health < *last.health)
	switch {
	case !v.healthKnown:
		return "no signals any more: no quality checks and no runs in the windows"
	case last.healthBand == model.Unknown:
		return "first signals: " + v.healthBand
	case worse && v.cause != "":
		return v.cause
	case worse:
		return "score moved down"
	}
	return "recovered: " + v.healthBand
}

// rootCauses names where a product's problems are: itself when its health
// is not healthy, the upstream product that caps its trust (how many hops
// up), and direct upstream products that are not healthy.
func rootCauses(p string, v verdict, flow model.Flow, scoreOf func(string) (remote, bool), up []string) ([]events.RootCause, string) {
	var out []events.RootCause
	seen := map[string]bool{}
	add := func(urn string, hops int) {
		if seen[urn] {
			return
		}
		r, ok := scoreOf(urn)
		if !ok {
			return
		}
		seen[urn] = true
		out = append(out, events.RootCause{ProductURN: urn, Hops: hops, HealthBand: r.healthBand, Signals: r.problems})
	}
	if v.healthBand != model.Healthy && v.healthBand != model.Unknown && len(v.partial.Problems) > 0 {
		seen[p] = true
		out = append(out, events.RootCause{ProductURN: p, Hops: 0, HealthBand: v.healthBand, Signals: v.partial.Problems})
	}
	if flow.Capped(p) {
		add(flow.Cause, flow.Hops)
	}
	for _, u := range up {
		if r, ok := scoreOf(u); ok && r.healthBand != model.Healthy && r.healthBand != model.Unknown {
			add(u, 1)
		}
	}
	if len(out) == 0 {
		return nil, ""
	}
	c := out[0]
	where := "itself"
	if c.Hops > 0 {
		where = fmt.Sprintf("upstream %s (%s up)", model.Short(c.ProductURN), hopsText(c.Hops))
	}
	cause := fmt.Sprintf("%s is %s", where, c.HealthBand)
	if len(c.Signals) > 0 {
		cause += ": " + strings.Join(c.Signals, "; ")
	}
	return out, cause
}

func hopsText(n int) string {
	if n == 1 {
		return "1 hop"
	}
	return fmt.Sprintf("%d hops", n)
}

func ptr[T any](v T) *T { return &v }
