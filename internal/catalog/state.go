package catalog

import (
	"sort"
	"strings"
	"sync"
)

// productInfo is a product's declaration as the catalog shows it.
type productInfo struct {
	URN         string   `json:"urn"`
	Domain      string   `json:"domain"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Tags        []string `json:"tags"`
	Owners      []string `json:"owners"`
	Lifecycle   string   `json:"lifecycle"`
	DocURL      string   `json:"documentation_url"`
	AccessNotes string   `json:"access_notes"`
	Outputs     []string `json:"outputs"`
	Inputs      []string `json:"inputs"`
}

// datasetInfo is what the search index holds of a dataset.
type datasetInfo struct {
	URN         string
	Product     string
	Domain      string
	Description string
	Fields      []fieldInfo
}

type fieldInfo struct {
	Name           string `json:"name"`
	Type           string `json:"type"`
	Description    string `json:"description"`
	Classification string `json:"classification"`
	PII            bool   `json:"pii"`
	Source         string `json:"source"` // declared (by the owning product) or openlineage (observed)
}

// Score is a product's current score as the pages show it; nil numbers and
// the band "unknown" mean no signals yet.
type Score struct {
	Product    string   `json:"product"`
	Domain     string   `json:"domain"`
	Health     *float64 `json:"health"`
	Trust      *float64 `json:"trust"`
	HealthBand string   `json:"health_band"`
	TrustBand  string   `json:"trust_band"`
	Cause      string   `json:"cause"`
	At         int64    `json:"at"` // computed at, Unix ms
}

// meshState is the products and their current scores, in memory: the mesh
// page and search read it without a query.
type meshState struct {
	mu       sync.RWMutex
	products map[string]productInfo
	scores   map[string]Score
	// order is every product worst first, with the per-domain band counts,
	// kept until products or scores change: sorting 100,000 products on
	// every request was most of the mesh page's time.
	order   []ranked
	domains map[string]map[string]int
}

// ranked is a product's place in the worst-first order.
type ranked struct {
	urn, domain, worst string
}

func newMeshState() *meshState {
	return &meshState{products: map[string]productInfo{}, scores: map[string]Score{}}
}

func (m *meshState) replace(products map[string]productInfo, scores map[string]Score) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.products = products
	m.order = nil
	for p, s := range scores {
		if old, ok := m.scores[p]; !ok || s.At >= old.At {
			m.scores[p] = s
		}
	}
}

// setScores applies scores read since the last poll and returns those that
// changed what a page shows.
func (m *meshState) setScores(scores map[string]Score) []Score {
	m.mu.Lock()
	defer m.mu.Unlock()
	var changed []Score
	for p, s := range scores {
		old, ok := m.scores[p]
		if ok && s.At <= old.At {
			continue
		}
		m.scores[p] = s
		if !ok || !sameScore(old, s) {
			changed = append(changed, s)
			m.order = nil
		}
	}
	sort.Slice(changed, func(i, j int) bool { return changed[i].Product < changed[j].Product })
	return changed
}

// anyUnknown says whether a score is of a product not loaded yet.
func (m *meshState) anyUnknown(scores []Score) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, s := range scores {
		if _, ok := m.products[s.Product]; !ok {
			return true
		}
	}
	return false
}

func sameScore(a, b Score) bool {
	eq := func(x, y *float64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return eq(a.Health, b.Health) && eq(a.Trust, b.Trust) && a.HealthBand == b.HealthBand && a.TrustBand == b.TrustBand && a.Cause == b.Cause
}

func (m *meshState) product(urn string) (productInfo, Score, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p, ok := m.products[urn]
	return p, m.scoreOf(urn, p.Domain), ok
}

func (m *meshState) score(urn string) Score {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.scoreOf(urn, "")
}

// scoreOf is a product's score, "unknown" when it has none yet.
func (m *meshState) scoreOf(urn, domain string) Score {
	s, ok := m.scores[urn]
	if !ok {
		return Score{Product: urn, Domain: domain, HealthBand: "unknown", TrustBand: "unknown"}
	}
	if s.HealthBand == "" {
		s.HealthBand = "unknown"
	}
	if s.TrustBand == "" {
		s.TrustBand = "unknown"
	}
	return s
}

// bandRank orders bands worst first; unknown sits after the known
// problems and before healthy.
func bandRank(b string) int {
	switch b {
	case "critical":
		return 0
	case "degraded":
		return 1
	case "unknown", "":
		return 2
	}
	return 3
}

// meshRow is one product of the mesh page.
type meshRow struct {
	productInfo
	Score Score `json:"score"`
}

// meshPage filters and sorts the mesh, worst first: the worse of the two
// bands, then trust, then name.
type meshPage struct {
	Total   int                       `json:"total"`   // products matching the filter
	Domains map[string]map[string]int `json:"domains"` // domain -> band -> products, over the whole mesh
	Rows    []meshRow                 `json:"rows"`
}

func (m *meshState) page(domain, band, query string, offset, limit int) meshPage {
	m.mu.Lock() // the order may be rebuilt
	defer m.mu.Unlock()
	if m.order == nil {
		m.rank()
	}
	out := meshPage{Domains: m.domains}
	query = strings.ToLower(query)
	for _, r := range m.order {
		if (domain != "" && r.domain != domain) || (band != "" && r.worst != band) {
			continue
		}
		p := m.products[r.urn]
		if query != "" && !strings.Contains(strings.ToLower(p.Name+" "+p.URN), query) {
			continue
		}
		if out.Total >= offset && len(out.Rows) < limit {
			out.Rows = append(out.Rows, meshRow{productInfo: p, Score: m.scoreOf(r.urn, p.Domain)})
		}
		out.Total++
	}
	return out
}

// rank sorts every product worst first (the worse of the two bands, then
// trust, then URN) and counts each domain's products per band.
func (m *meshState) rank() {
	m.order = make([]ranked, 0, len(m.products))
	m.domains = map[string]map[string]int{}
	trust := make(map[string]float64, len(m.products))
	for urn, p := range m.products {
		s := m.scoreOf(urn, p.Domain)
		worst := worse(s.HealthBand, s.TrustBand)
		if m.domains[p.Domain] == nil {
			m.domains[p.Domain] = map[string]int{}
		}
		m.domains[p.Domain][worst]++
		m.order = append(m.order, ranked{urn: urn, domain: p.Domain, worst: worst})
		trust[urn] = value(s.Trust)
	}
	sort.Slice(m.order, func(i, j int) bool {
		a, b := m.order[i], m.order[j]
		if ra, rb := bandRank(a.worst), bandRank(b.worst); ra != rb {
			return ra < rb
		}
		if ta, tb := trust[a.urn], trust[b.urn]; ta != tb {
			return ta < tb
		}
		return a.urn < b.urn
	})
}

func worse(a, b string) string {
	if bandRank(a) <= bandRank(b) {
		return bandOr(a)
	}
	return bandOr(b)
}

func bandOr(b string) string {
	if b == "" {
		return "unknown"
	}
	return b
}

func value(f *float64) float64 {
	if f == nil {
		return 101 // unknown sorts after every known score of its band
	}
	return *f
}
