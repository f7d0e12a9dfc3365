package testenv

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Registry is a Confluent-compatible Schema Registry for tests: the subset
// of its REST API that serializers and meshpulse use (register a schema
// under a subject, fetch a schema by id), and a switch that makes it answer
// 503, as a registry does during an outage. No Confluent Schema Registry is
// served from the package registries these machines reach, so the
// serializers are real (Confluent's Python client) and the registry is this.
type Registry struct {
	URL     string
	down    atomic.Bool
	lookups atomic.Int64

	mu      sync.Mutex
	schemas []string       // id-1 -> schema text
	ids     map[string]int // schema text -> id
}

// SchemaRegistry starts a registry that lives as long as the test.
func SchemaRegistry(t testing.TB) *Registry {
	t.Helper()
	r := &Registry{ids: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// SetDown makes every request answer 503 (true) or serve again (false).
func (r *Registry) SetDown(down bool) { r.down.Store(down) }

// Lookups counts schema-by-id requests served or refused.
func (r *Registry) Lookups() int64 { return r.lookups.Load() }

// Register adds a schema and returns its id (the same id for the same text).
func (r *Registry) Register(schema string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id, ok := r.ids[schema]; ok {
		return id
	}
	r.schemas = append(r.schemas, schema)
	r.ids[schema] = len(r.schemas)
	return len(r.schemas)
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
	reply := func(code int, v any) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	if strings.HasPrefix(req.URL.Path, "/schemas/ids/") {
		r.lookups.Add(1)
	}
	if r.down.Load() {
		reply(http.StatusServiceUnavailable, map[string]any{"error_code": 50301, "message": "registry unavailable (test outage)"})
		return
	}
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	switch {
	case req.Method == http.MethodPost && len(parts) == 3 && parts[0] == "subjects" && parts[2] == "versions":
		var body struct {
			Schema string `json:"schema"`
		}
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil || body.Schema == "" {
			reply(http.StatusUnprocessableEntity, map[string]any{"error_code": 42201, "message": "invalid schema"})
			return
		}
		reply(http.StatusOK, map[string]any{"id": r.Register(body.Schema)})
	case req.Method == http.MethodGet && len(parts) == 3 && parts[0] == "schemas" && parts[1] == "ids":
		id, _ := strconv.Atoi(parts[2])
		r.mu.Lock()
		defer r.mu.Unlock()
		if id < 1 || id > len(r.schemas) {
			reply(http.StatusNotFound, map[string]any{"error_code": 40403, "message": "Schema " + parts[2] + " not found"})
			return
		}
		reply(http.StatusOK, map[string]any{"schema": r.schemas[id-1]})
	default:
		reply(http.StatusNotFound, map[string]any{"error_code": 404, "message": "not supported by the test registry: " + req.Method + " " + req.URL.Path})
	}
}
