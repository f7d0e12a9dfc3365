package catalog

import (
	"fmt"
	"hash/fnv"
	"math"
	"os"
	stdregexp "regexp"
	"sort"
	"strings"
	"sync"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/regexp"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"
)

// searchIndex is the full-text index of the mesh's metadata: one document
// per product and per dataset, with every field's name and description in
// its dataset's document. It is bleve (a maintained Go search library:
// analysis, fuzzy and prefix queries, relevance scoring) rather than
// hand-written matching: typos, prefixes and ranking are its job. The
// index lives in a temporary directory (scorch segments, memory-mapped), so
// a mesh of 100,000 products does not have to fit the heap.
type searchIndex struct {
	dir   string
	index bleve.Index

	mu     sync.RWMutex
	hashes map[string]uint64 // document id -> content hash, to reindex only what changed
	boost  map[string]float64
}

// searchDoc is an indexed document.
type searchDoc struct {
	Kind        string `json:"kind"`
	URN         string `json:"urn"`
	Name        string `json:"name"`
	Domain      string `json:"domain"`
	Description string `json:"description"`
	Tags        string `json:"tags"`
	Owners      string `json:"owners"`
	Fields      string `json:"fields"`
	FieldDocs   string `json:"field_docs"`
	Classes     string `json:"classes"`
}

func newSearchIndex() (*searchIndex, error) {
	dir, err := os.MkdirTemp("", "meshpulse-catalog-index-")
	if err != nil {
		return nil, err
	}
	m := bleve.NewIndexMapping()
	// Words are runs of letters and digits: URNs, dotted names and
	// snake_case split into the words people type (sales, orders,
	// customer, id), lower-cased.
	if err := m.AddCustomTokenizer("alnum", map[string]any{"type": regexp.Name, "regexp": `[\p{L}\p{N}]+`}); err != nil {
		return nil, err
	}
	if err := m.AddCustomAnalyzer("meshtext", map[string]any{"type": custom.Name, "tokenizer": "alnum",
		"token_filters": []string{lowercase.Name}}); err != nil {
		return nil, err
	}
	m.DefaultAnalyzer = "meshtext"
	doc := bleve.NewDocumentMapping()
	text := func(store bool) *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Analyzer = "meshtext"
		f.Store = store
		f.IncludeTermVectors = false
		return f
	}
	for _, name := range []string{"name", "urn", "description", "tags", "owners", "fields", "field_docs", "classes", "domain"} {
		doc.AddFieldMappingsAt(name, text(false))
	}
	kind := bleve.NewKeywordFieldMapping()
	kind.Store = false
	doc.AddFieldMappingsAt("kind", kind)
	m.DefaultMapping = doc
	idx, err := bleve.New(dir+"/index", m)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("search index: %w", err)
	}
	return &searchIndex{dir: dir, index: idx, hashes: map[string]uint64{}, boost: map[string]float64{}}, nil
}

func (s *searchIndex) close() {
	s.index.Close()
	os.RemoveAll(s.dir)
}

// update indexes new and changed documents and removes the gone ones; it
// returns how many it (re)indexed. Boosts (usage, trust) are kept beside
// the index and applied when ranking.
func (s *searchIndex) update(products map[string]productInfo, datasets map[string]datasetInfo, consumers map[string]int) (int, error) {
	docs := map[string]searchDoc{}
	boost := map[string]float64{}
	for urn, p := range products {
		docs[urn] = searchDoc{Kind: "product", URN: urn, Name: p.Name, Domain: p.Domain, Description: p.Description,
			Tags: strings.Join(p.Tags, " "), Owners: strings.Join(p.Owners, " ")}
		n := 0
		for _, o := range p.Outputs {
			n += consumers[o]
		}
		boost[urn] = usageBoost(n)
	}
	for urn, d := range datasets {
		var names, descs, classes []string
		for _, f := range d.Fields {
			names = append(names, f.Name)
			if f.Description != "" {
				descs = append(descs, f.Description)
			}
			if f.Classification != "" {
				classes = append(classes, f.Classification)
			}
			if f.PII {
				classes = append(classes, "pii")
			}
		}
		docs[urn] = searchDoc{Kind: "dataset", URN: urn, Name: datasetName(urn), Domain: d.Domain, Description: d.Description,
			Fields: strings.Join(names, " "), FieldDocs: strings.Join(descs, " "), Classes: strings.Join(classes, " ")}
		boost[urn] = usageBoost(consumers[urn])
	}
	b := s.index.NewBatch()
	next := make(map[string]uint64, len(docs))
	changed := 0
	s.mu.RLock()
	for id, d := range docs {
		h := hashDoc(d)
		next[id] = h
		if s.hashes[id] != h {
			if err := b.Index(id, d); err != nil {
				s.mu.RUnlock()
				return 0, err
			}
			changed++
		}
	}
	for id := range s.hashes {
		if _, ok := docs[id]; !ok {
			b.Delete(id)
		}
	}
	s.mu.RUnlock()
	if b.Size() > 0 {
		if err := s.index.Batch(b); err != nil {
			return 0, fmt.Errorf("search index: %w", err)
		}
	}
	s.mu.Lock()
	s.hashes, s.boost = next, boost
	s.mu.Unlock()
	return changed, nil
}

// usageBoost favours what many consumers read, as Amundsen ranks by
// popularity, gently: ten consumers weigh 1.24, a thousand 1.69.
func usageBoost(consumers int) float64 { return 1 + 0.1*math.Log1p(float64(consumers)) }

// datasetName is the last part of a dataset URN's path, what people type.
func datasetName(urn string) string {
	i := strings.LastIndexAny(urn, ":/")
	return urn[i+1:]
}

func hashDoc(d searchDoc) uint64 {
	h := fnv.New64a()
	for _, s := range []string{d.Kind, d.Name, d.Domain, d.Description, d.Tags, d.Owners, d.Fields, d.FieldDocs, d.Classes} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

var wordRE = stdregexp.MustCompile(`[\p{L}\p{N}]+`)

// Hit is a search result.
type Hit struct {
	Kind      string   `json:"kind"` // product or dataset
	URN       string   `json:"urn"`
	Score     float64  `json:"score"`
	Relevance float64  `json:"relevance"`
	Trust     *float64 `json:"trust,omitempty"`
	TrustBand string   `json:"trust_band,omitempty"`
}

// query finds the documents matching what a user typed: every word
// matches (as typed, with one typo, or as the prefix of a word for the
// one being typed) in any field, names weighing most. Results are ranked
// by relevance times the usage boost and a trust boost.
func (s *searchIndex) query(text string, limit int, mesh *meshState) ([]Hit, error) {
	words := wordRE.FindAllString(strings.ToLower(text), -1)
	if len(words) == 0 {
		return nil, nil
	}
	// Typos and prefixes are looked for in the short, name-like fields
	// only: a fuzzy or prefix term expands over a field's whole dictionary,
	// and over descriptions that cost most of a search's time at 100,000
	// products.
	fields := []struct {
		name   string
		boost  float64
		approx bool
	}{{"name", 4, true}, {"urn", 2, true}, {"domain", 1.5, false}, {"tags", 1.5, true}, {"fields", 1.5, true}, {"description", 1, false},
		{"owners", 1, false}, {"field_docs", 0.7, false}, {"classes", 1, false}}
	var must []query.Query
	for k, w := range words {
		var any []query.Query
		for _, f := range fields {
			exact := query.NewMatchQuery(w)
			exact.SetField(f.name)
			exact.SetBoost(f.boost * 2)
			any = append(any, exact)
			if f.approx && len([]rune(w)) >= 4 {
				fuzzy := query.NewMatchQuery(w)
				fuzzy.SetField(f.name)
				fuzzy.SetFuzziness(1)
				fuzzy.SetBoost(f.boost)
				any = append(any, fuzzy)
			}
			if f.approx && k == len(words)-1 && len([]rune(w)) >= 2 {
				prefix := query.NewPrefixQuery(w)
				prefix.SetField(f.name)
				prefix.SetBoost(f.boost)
				any = append(any, prefix)
			}
		}
		must = append(must, query.NewDisjunctionQuery(any))
	}
	req := bleve.NewSearchRequestOptions(query.NewConjunctionQuery(must), 200, 0, false)
	res, err := s.index.Search(req)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	hits := make([]Hit, 0, len(res.Hits))
	for _, h := range res.Hits {
		kind := "dataset"
		if strings.HasPrefix(h.ID, "urn:mesh:product:") {
			kind = "product"
		}
		hit := Hit{Kind: kind, URN: h.ID, Relevance: h.Score}
		trustBoost := 0.9 // unknown
		if kind == "product" {
			sc := mesh.score(h.ID)
			hit.Trust, hit.TrustBand = sc.Trust, sc.TrustBand
			if sc.Trust != nil {
				trustBoost = 0.8 + 0.2*(*sc.Trust)/100
			}
		}
		hit.Score = h.Score * s.boost[h.ID] * trustBoost
		hits = append(hits, hit)
	}
	s.mu.RUnlock()
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].Score > hits[j].Score })
	return hits[:min(limit, len(hits))], nil
}
