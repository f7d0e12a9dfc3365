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
}

func newMeshState() *meshState {
	return &meshState{products: map[string]productInfo{}, scores: map[string]Score{}}
}

func (m *meshState) replace(products map[string]productInfo, scores map[string]Score) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.products = products
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
		}
	}
	sort.Slice(changed, func(i, j int) bool { return changed[i].Product < changed[j].Product })
	return changed
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
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := meshPage{Domains: map[string]map[string]int{}}
	rows := make([]meshRow, 0, len(m.products))
	for urn, p := range m.products {
		s := m.scoreOf(urn, p.Domain)
		worst := worse(s.HealthBand, s.TrustBand)
		if out.Domains[p.Domain] == nil {
			out.Domains[p.Domain] = map[string]int{}
		}
		out.Domains[p.Domain][worst]++
		if (domain != "" && p.Domain != domain) || (band != "" && worst != band) ||
			(query != "" && !strings.Contains(strings.ToLower(p.Name+" "+p.URN), strings.ToLower(query))) {
			continue
		}
		rows = append(rows, meshRow{productInfo: p, Score: s})
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i].Score, rows[j].Score
		ra, rb := bandRank(worse(a.HealthBand, a.TrustBand)), bandRank(worse(b.HealthBand, b.TrustBand))
		if ra != rb {
			return ra < rb
		}
		ta, tb := value(a.Trust), value(b.Trust)
		if ta != tb {
			return ta < tb
		}
		return rows[i].URN < rows[j].URN
	})
	out.Total = len(rows)
	if offset > len(rows) {
		offset = len(rows)
	}
	out.Rows = rows[offset:min(offset+limit, len(rows))]
	return out
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
