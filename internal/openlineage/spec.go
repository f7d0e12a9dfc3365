package openlineage

import (
	"bytes"
	"embed"
	"fmt"
	"hash/maphash"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The official OpenLineage JSON schemas, copied unchanged from the
// OpenLineage repository (spec/OpenLineage.json and spec/facets/*.json at
// SpecCommit).
//
//go:embed spec/OpenLineage.json spec/facets/*.json
var specFS embed.FS

const (
	// SpecVersion is the version of the core schema embedded.
	SpecVersion = "2-0-2"
	// SpecCommit is the OpenLineage/OpenLineage commit the schemas come from.
	SpecCommit = "8f02abfb7a252783b95df79f443edb13959bf52c"
	coreURL    = "https://openlineage.io/spec/" + SpecVersion + "/OpenLineage.json"
)

// Where a facet sits in an event: the same facet name can mean different
// facets in different places (documentation of a job or of a dataset).
type place string

const (
	placeRun     place = "RunFacet"
	placeJob     place = "JobFacet"
	placeDataset place = "DatasetFacet"
	placeInput   place = "InputDatasetFacet"
	placeOutput  place = "OutputDatasetFacet"
)

// FacetSchema names one embedded facet schema.
type FacetSchema struct {
	Name    string // the key in a facets object, e.g. "schema"
	Place   string // RunFacet, JobFacet, DatasetFacet, InputDatasetFacet or OutputDatasetFacet
	Version string // e.g. 1-2-0
	File    string // e.g. SchemaDatasetFacet.json
}

// Spec is the compiled OpenLineage schemas. It is safe for concurrent use.
type Spec struct {
	events map[string]*jsonschema.Schema // RunEvent, DatasetEvent, JobEvent
	bases  map[place]*jsonschema.Schema  // the base facet of each place
	seed   maphash.Seed
	seen   *boundedCache[struct{}] // facets validated before, by content
	// factsSeen holds the dataset facts decoded before, by content.
	factsSeen *boundedCache[DatasetFacts]
	facets    map[place]map[string]*jsonschema.Schema
	byName    map[string]*jsonschema.Schema // a facet found in another place than its schema says
	list      []FacetSchema
}

// LoadSpec compiles the embedded schemas.
func LoadSpec() (*Spec, error) {
	c := jsonschema.NewCompiler()
	type facetFile struct {
		url, name, file, version string
		doc                      map[string]any
		prop                     any
	}
	var facets []facetFile
	err := fs.WalkDir(specFS, "spec", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := specFS.ReadFile(p)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		obj, _ := doc.(map[string]any)
		id, _ := obj["$id"].(string)
		if id == "" {
			return fmt.Errorf("%s: no $id", p)
		}
		if err := c.AddResource(id, doc); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if path.Dir(p) != "spec/facets" {
			return nil
		}
		// A facet file has one property, the facet's key, referring to
		// its definition: {"properties": {"schema": {"$ref": "#/$defs/SchemaDatasetFacet"}}}.
		props, _ := obj["properties"].(map[string]any)
		for name, v := range props {
			parts := strings.Split(strings.TrimRight(id, "/"), "/")
			facets = append(facets, facetFile{url: id, name: name, file: path.Base(p), version: parts[len(parts)-2], doc: obj, prop: v})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("openlineage spec: %w", err)
	}
	s := &Spec{events: map[string]*jsonschema.Schema{}, bases: map[place]*jsonschema.Schema{}, facets: map[place]map[string]*jsonschema.Schema{},
		byName: map[string]*jsonschema.Schema{}, seed: maphash.MakeSeed(), seen: newBoundedCache[struct{}](1 << 16),
		factsSeen: newBoundedCache[DatasetFacts](1 << 14)}
	for _, kind := range []string{KindRun, KindDataset, KindJob} {
		sch, err := c.Compile(coreURL + "#/$defs/" + kind)
		if err != nil {
			return nil, fmt.Errorf("openlineage spec %s: %w", kind, err)
		}
		s.events[kind] = sch
	}
	for _, pl := range []place{placeRun, placeJob, placeDataset, placeInput, placeOutput} {
		sch, err := c.Compile(coreURL + "#/$defs/" + string(pl))
		if err != nil {
			return nil, fmt.Errorf("openlineage spec %s: %w", pl, err)
		}
		s.bases[pl] = sch
	}
	for _, f := range facets {
		sch, err := c.Compile(f.url + "#/properties/" + f.name)
		if err != nil {
			return nil, fmt.Errorf("openlineage facet %s: %w", f.file, err)
		}
		places := facetPlaces(f.doc, f.prop)
		if len(places) == 0 {
			return nil, fmt.Errorf("openlineage facet %s (%s): cannot tell whether it is a run, job or dataset facet", f.file, f.url)
		}
		for _, pl := range places {
			if s.facets[pl] == nil {
				s.facets[pl] = map[string]*jsonschema.Schema{}
			}
			s.facets[pl][f.name] = sch
			s.list = append(s.list, FacetSchema{Name: f.name, Place: string(pl), Version: f.version, File: f.file})
		}
		if _, ok := s.byName[f.name]; !ok {
			s.byName[f.name] = sch
		}
	}
	sort.Slice(s.list, func(i, j int) bool {
		if s.list[i].Place != s.list[j].Place {
			return s.list[i].Place < s.list[j].Place
		}
		return s.list[i].Name < s.list[j].Name
	})
	return s, nil
}

// Facets lists the facet schemas the spec validates.
func (s *Spec) Facets() []FacetSchema { return s.list }

// facetPlaces reads which base facets a facet extends, following its
// local references: {"allOf": [{"$ref": ".../OpenLineage.json#/$defs/RunFacet"}, …]},
// or a oneOf/anyOf of such (subset is an input or an output facet).
func facetPlaces(doc map[string]any, prop any) []place {
	defs, _ := doc["$defs"].(map[string]any)
	seen := map[string]bool{}
	found := map[place]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			if ref, ok := t["$ref"].(string); ok {
				for _, pl := range []place{placeRun, placeJob, placeDataset, placeInput, placeOutput} {
					if strings.HasSuffix(ref, "OpenLineage.json#/$defs/"+string(pl)) {
						found[pl] = true
					}
				}
				if local, ok := strings.CutPrefix(ref, "#/$defs/"); ok && !seen[local] {
					seen[local] = true
					walk(defs[local])
				}
			}
			for k, c := range t {
				if k == "allOf" || k == "oneOf" || k == "anyOf" {
					walk(c)
				}
			}
		case []any:
			for _, c := range t {
				walk(c)
			}
		}
	}
	walk(prop)
	var out []place
	for _, pl := range []place{placeRun, placeJob, placeDataset, placeInput, placeOutput} {
		if found[pl] {
			out = append(out, pl)
		}
	}
	return out
}

// facet returns the schema of the facet name found at place pl: the one
// the spec defines there, else one of that name defined elsewhere
// (producers put dataQualityAssertions under facets as often as under
// inputFacets), else nil (a custom facet).
func (s *Spec) facet(pl place, name string) *jsonschema.Schema {
	if sch := s.facets[pl][name]; sch != nil {
		return sch
	}
	return s.byName[name]
}

// facetKey identifies a facet's content at a place.
func (s *Spec) facetKey(pl place, name string, raw []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(string(pl))
	h.WriteByte(0)
	h.WriteString(name)
	h.WriteByte(0)
	h.Write(raw)
	return h.Sum64()
}

// boundedCache is a map that forgets everything when it is full: the
// entries in use come back at once, and there is no bookkeeping per hit.
type boundedCache[V any] struct {
	mu    sync.RWMutex
	m     map[uint64]V
	bound int
}

func newBoundedCache[V any](bound int) *boundedCache[V] {
	return &boundedCache[V]{m: make(map[uint64]V, bound), bound: bound}
}

func (c *boundedCache[V]) get(k uint64) (V, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *boundedCache[V]) put(k uint64, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.bound {
		clear(c.m)
	}
	c.m[k] = v
}
