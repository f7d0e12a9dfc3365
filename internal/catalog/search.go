package catalog

import (
	"fmt"
	"hash/fnv"
	"math"
	"os"
	stdregexp "regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unicode"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/regexp"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/single"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search"
	"github.com/blevesearch/bleve/v2/search/query"
)

// searchIndex is the full-text index of the mesh's metadata: one document
// per product and per dataset, with every field's name and description in
// its dataset's document. It is bleve (a maintained Go search library:
// analysis, fuzzy and prefix queries, relevance scoring) rather than
// hand-written matching: typos, prefixes and ranking are its job. The
// index lives in a temporary directory (scorch segments, memory-mapped), so
// a mesh of 100,000 products does not have to fit the heap.
//
// Everything a document says is indexed as one field, with the name-like
// parts repeated so that they weigh more (relevance grows with a word's
// count in a document). One field, not one per kind of metadata: bleve
// visits every posting of every clause, and with a clause per field a word
// common in the mesh ("orders" in every dataset's field names) cost a
// 100,000-posting disjunction per field; measured at 100,000 products, the
// per-field index answered in 110–310 ms and this one in 1–73 ms (in the
// process, without HTTP; BENCHMARKS.md).
//
// The index is split into shards, one per core, that bleve searches in
// parallel (an index alias) and merges by relevance: a word found in most
// of the mesh costs its postings' scoring, which one core does alone
// otherwise. A document's shard is a hash of its id. Relevance uses each
// shard's own word statistics, which agree closely because the documents
// are spread evenly.
type searchIndex struct {
	dir    string
	shards []bleve.Index
	index  bleve.Index // an alias over the shards

	mu     sync.RWMutex
	hashes map[string]uint64 // document id -> content hash, to reindex only what changed
	boost  map[string]float64
}

// searchDoc is what a document says, by kind of metadata.
type searchDoc struct {
	Kind        string
	URN         string
	Name        string
	Domain      string
	Description string
	Tags        string
	Owners      string
	Fields      string
	FieldDocs   string
	Classes     string
}

// indexedDoc is what bleve indexes of a searchDoc.
type indexedDoc struct {
	Kind string `json:"kind"`
	All  string `json:"all"`
	// Title is the whole name as one term (its words, lower-cased, spaced),
	// so that a search for exactly a name, or a typo of it, finds that
	// product before the ones whose names contain it.
	Title string `json:"title"`
}

// Weights of the parts of a document, as repetitions in the indexed text.
const (
	weightName = 4 // the product's or dataset's name
	weightKeys = 2 // URN, tags, field names, domain
)

func (d searchDoc) indexed() indexedDoc {
	var b strings.Builder
	add := func(s string, times int) {
		for range times {
			b.WriteString(s)
			b.WriteByte(' ')
		}
	}
	add(d.Name, weightName)
	for _, s := range []string{d.URN, d.Tags, d.Fields, d.Domain} {
		add(s, weightKeys)
	}
	for _, s := range []string{d.Description, d.Owners, d.FieldDocs, d.Classes} {
		add(s, 1)
	}
	return indexedDoc{Kind: d.Kind, All: b.String(), Title: titleOf(d.Name)}
}

// searchShards is how many shards the index has: one per core, at most 8.
func searchShards() int { return min(max(runtime.GOMAXPROCS(0), 1), 8) }

func newSearchIndex(shards int) (*searchIndex, error) {
	dir, err := os.MkdirTemp("", "meshpulse-catalog-index-")
	if err != nil {
		return nil, err
	}
	m, err := searchMapping()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &searchIndex{dir: dir, hashes: map[string]uint64{}, boost: map[string]float64{}}
	for k := range shards {
		idx, err := bleve.New(fmt.Sprintf("%s/shard%d", dir, k), m)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("search index: %w", err)
		}
		s.shards = append(s.shards, idx)
	}
	s.index = bleve.NewIndexAlias(s.shards...)
	return s, nil
}

// searchMapping says how documents are analysed and indexed.
func searchMapping() (*mapping.IndexMappingImpl, error) {
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
	if err := m.AddCustomAnalyzer("title", map[string]any{"type": custom.Name, "tokenizer": single.Name}); err != nil {
		return nil, err
	}
	m.IndexDynamic = false
	m.StoreDynamic = false
	doc := bleve.NewDocumentStaticMapping()
	// Indexed for search only: nothing stored, no term vectors, no doc values.
	searchOnly := func(analyzer string) *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Analyzer = analyzer
		f.Store = false
		f.IncludeTermVectors = false
		f.IncludeInAll = false
		f.DocValues = false
		return f
	}
	doc.AddFieldMappingsAt("all", searchOnly("meshtext"))
	doc.AddFieldMappingsAt("title", searchOnly("title"))
	kind := bleve.NewKeywordFieldMapping()
	kind.Store = false
	kind.IncludeInAll = false
	doc.AddFieldMappingsAt("kind", kind)
	m.DefaultMapping = doc
	return m, nil
}

func (s *searchIndex) close() {
	for _, idx := range s.shards {
		idx.Close()
	}
	os.RemoveAll(s.dir)
}

// shardOf is the shard that holds a document.
func (s *searchIndex) shardOf(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(len(s.shards)))
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
	// Batches of a few thousand documents: one batch of a whole mesh holds
	// every analysed document in memory at once (gigabytes at 100,000
	// products), and bleve merges the segments anyway.
	const batchDocs = 5000
	batches := make([]*bleve.Batch, len(s.shards))
	for k, idx := range s.shards {
		batches[k] = idx.NewBatch()
	}
	send := func(k int) error {
		if batches[k].Size() == 0 {
			return nil
		}
		if err := s.shards[k].Batch(batches[k]); err != nil {
			return fmt.Errorf("search index: %w", err)
		}
		batches[k].Reset()
		return nil
	}
	next := make(map[string]uint64, len(docs))
	changed := 0
	s.mu.RLock()
	old := s.hashes
	s.mu.RUnlock()
	for id, d := range docs {
		h := hashDoc(d)
		next[id] = h
		if old[id] != h {
			k := s.shardOf(id)
			if err := batches[k].Index(id, d.indexed()); err != nil {
				return 0, err
			}
			changed++
			if batches[k].Size() >= batchDocs {
				if err := send(k); err != nil {
					return 0, err
				}
			}
		}
	}
	for id := range old {
		if _, ok := docs[id]; !ok {
			batches[s.shardOf(id)].Delete(id)
		}
	}
	for k := range s.shards {
		if err := send(k); err != nil {
			return 0, err
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
// matches, as typed, or as the prefix of a word for the last one (the one
// being typed). Typos are looked for only when that finds fewer than limit
// documents: then a word of four letters or more also matches the words
// one edit away. Words with digits are identifiers and never fuzzy
// ("domain7" is not a typo of "domain1"). Results are ranked by relevance
// times the usage boost and a trust boost.
func (s *searchIndex) query(text string, limit int, mesh *meshState) ([]Hit, error) {
	words := wordRE.FindAllString(strings.ToLower(text), -1)
	if len(words) == 0 {
		return nil, nil
	}
	size := max(4*limit, 40) // re-ranked by the boosts below
	found, err := s.search(words, false, size)
	if err != nil {
		return nil, err
	}
	if len(found) < limit && anyFuzzy(words) {
		if found, err = s.search(words, true, size); err != nil {
			return nil, err
		}
	}
	s.mu.RLock()
	hits := make([]Hit, 0, len(found))
	for _, h := range found {
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
	sort.SliceStable(hits, func(i, j int) bool {
		if hits[i].Score != hits[j].Score {
			return hits[i].Score > hits[j].Score
		}
		return hits[i].URN < hits[j].URN
	})
	return hits[:min(limit, len(hits))], nil
}

// titleOf is a name as the title term: its words, lower-cased, spaced.
func titleOf(name string) string {
	return strings.Join(wordRE.FindAllString(strings.ToLower(name), -1), " ")
}

// titleBoost multiplies the relevance of a document whose whole name is
// what was typed (or, with typos allowed, one edit from it).
const titleBoost = 3

// search runs the words' query and, apart, the title query, and multiplies
// the relevance of the documents the title query finds. Two searches
// rather than one boolean query: the title query touches a handful of
// postings, and a boolean wrapper around the words' query doubled the time
// of a word that matches most of the mesh.
func (s *searchIndex) search(words []string, fuzzy bool, size int) ([]*search.DocumentMatch, error) {
	q, err := s.matchWords(words, fuzzy)
	if err != nil {
		return nil, err
	}
	res, err := s.index.Search(bleve.NewSearchRequestOptions(q, size, 0, false))
	if err != nil {
		return nil, err
	}
	titled, err := s.index.Search(bleve.NewSearchRequestOptions(titleQuery(words, fuzzy), 10, 0, false))
	if err != nil {
		return nil, err
	}
	found := res.Hits
	top := 1.0
	if len(found) > 0 {
		top = found[0].Score
	}
	at := map[string]*search.DocumentMatch{}
	for _, h := range found {
		at[h.ID] = h
	}
	for _, t := range titled.Hits {
		h, ok := at[t.ID]
		if !ok {
			// Beyond the words' first results; its name matches them all.
			h = &search.DocumentMatch{ID: t.ID, Score: top}
			found = append(found, h)
		}
		h.Score *= titleBoost
	}
	return found, nil
}

// titleQuery finds the documents whose whole name is the words (with
// fuzzy, or one edit from them).
func titleQuery(words []string, fuzzy bool) query.Query {
	title := strings.Join(words, " ")
	exact := query.NewTermQuery(title)
	exact.SetField("title")
	if !fuzzy || !fuzzyWord(title) {
		return exact
	}
	near := query.NewFuzzyQuery(title)
	near.SetField("title")
	near.SetFuzziness(1)
	return query.NewDisjunctionQuery([]query.Query{exact, near})
}

// matchWords is the conjunction of the words: each as typed, the last also
// as a prefix, and with fuzzy each eligible word also one edit away.
func (s *searchIndex) matchWords(words []string, fuzzy bool) (query.Query, error) {
	var must []query.Query
	for k, w := range words {
		var q query.Query
		if k == len(words)-1 && len([]rune(w)) >= 2 {
			terms, err := s.expand(w)
			if err != nil {
				return nil, err
			}
			q = anyTerm(terms)
		} else {
			q = anyTerm([]string{w})
		}
		if fuzzy && fuzzyWord(w) {
			f := query.NewFuzzyQuery(w)
			f.SetField("all")
			f.SetFuzziness(1)
			f.SetBoost(0.5)
			q = query.NewDisjunctionQuery([]query.Query{q, f})
		}
		must = append(must, q)
	}
	if len(must) == 1 {
		return must[0], nil
	}
	return query.NewConjunctionQuery(must), nil
}

// maxPrefixTerms bounds the words a prefix stands for: the most frequent.
const maxPrefixTerms = 32

// expand lists the indexed words that start with prefix (the prefix itself
// included when it is a word), at most maxPrefixTerms of the most frequent.
// Done here rather than by a prefix query, which wraps even a single word
// in a disjunction (a prefix of one very common word took twice a term's
// time).
func (s *searchIndex) expand(prefix string) ([]string, error) {
	counts := map[string]uint64{}
	for _, idx := range s.shards {
		if err := prefixCounts(idx, prefix, counts); err != nil {
			return nil, err
		}
	}
	terms := make([]string, 0, len(counts))
	for t := range counts {
		terms = append(terms, t)
	}
	sort.Slice(terms, func(i, j int) bool {
		if counts[terms[i]] != counts[terms[j]] {
			return counts[terms[i]] > counts[terms[j]]
		}
		return terms[i] < terms[j]
	})
	return terms[:min(len(terms), maxPrefixTerms)], nil
}

// prefixCounts adds the documents of one shard per word starting with
// prefix.
func prefixCounts(idx bleve.Index, prefix string, counts map[string]uint64) error {
	dict, err := idx.FieldDictPrefix("all", []byte(prefix))
	if err != nil {
		return err
	}
	defer dict.Close()
	for {
		e, err := dict.Next()
		if err != nil {
			return err
		}
		if e == nil {
			return nil
		}
		counts[e.Term] += e.Count
	}
}

// anyTerm matches any of the words in the indexed text.
func anyTerm(terms []string) query.Query {
	if len(terms) == 0 {
		return query.NewMatchNoneQuery()
	}
	qs := make([]query.Query, len(terms))
	for k, t := range terms {
		tq := query.NewTermQuery(t)
		tq.SetField("all")
		qs[k] = tq
	}
	if len(qs) == 1 {
		return qs[0]
	}
	return query.NewDisjunctionQuery(qs)
}

// fuzzyWord says whether a word may be a typo worth correcting: four
// letters or more, and no digits.
func fuzzyWord(w string) bool {
	if len([]rune(w)) < 4 {
		return false
	}
	for _, r := range w {
		if unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

func anyFuzzy(words []string) bool {
	for _, w := range words {
		if fuzzyWord(w) {
			return true
		}
	}
	return false
}
