package catalog

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/sync/errgroup"

	"github.com/meshpulse/meshpulse/pkg/lineage"
)

// characteristics are the seven data-product characteristics the scorer
// reports among the components (docs/scoring.md).
var characteristics = map[string]bool{"discoverable": true, "addressable": true, "understandable": true,
	"accessible": true, "trustworthy": true, "interoperable": true, "secure": true}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func intParam(r *http.Request, name string, def, lo, hi int) int {
	v, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil {
		return def
	}
	return max(lo, min(hi, v))
}

// apiMesh: GET /api/mesh?domain=&band=&q=&offset=&limit=
func (s *Server) apiMesh(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page := s.mesh.page(q.Get("domain"), q.Get("band"), q.Get("q"), intParam(r, "offset", 0, 0, 1<<30), intParam(r, "limit", 100, 1, 1000))
	type row struct {
		meshRow
		Sparkline [][2]float64 `json:"sparkline"` // [Unix ms, trust] over 7 days
	}
	out := struct {
		Total   int                       `json:"total"`
		Domains map[string]map[string]int `json:"domains"`
		Rows    []row                     `json:"rows"`
	}{Total: page.Total, Domains: page.Domains, Rows: make([]row, len(page.Rows))}
	urns := make([]string, len(page.Rows))
	for i, p := range page.Rows {
		out.Rows[i].meshRow = p
		urns[i] = p.URN
	}
	lines, err := s.sparklines(r.Context(), urns)
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	for i := range out.Rows {
		out.Rows[i].Sparkline = lines[out.Rows[i].URN]
		if out.Rows[i].Sparkline == nil {
			out.Rows[i].Sparkline = [][2]float64{}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) sparklines(ctx context.Context, urns []string) (map[string][][2]float64, error) {
	out := map[string][][2]float64{}
	if len(urns) == 0 {
		return out, nil
	}
	qctx, err := withURNs(ctx, urns)
	if err != nil {
		return nil, err
	}
	err = scanAll(qctx, s.conn, s.q(qSparklines), nil, func(r driver.Rows) error {
		var p string
		var at int64
		var trust *float64
		if err := r.Scan(&p, &at, &trust); err != nil {
			return err
		}
		if trust != nil {
			out[p] = append(out[p], [2]float64{float64(at), *trust})
		}
		return nil
	})
	return out, err
}

type component struct {
	Name           string  `json:"name"`
	Score          float64 `json:"score"`
	Weight         float64 `json:"weight"`
	Detail         string  `json:"detail"`
	Characteristic bool    `json:"characteristic"`
}

type rootCause struct {
	Product string   `json:"product"`
	Hops    int      `json:"hops"`
	Band    string   `json:"health_band"`
	Signals []string `json:"signals"`
}

type productScore struct {
	Score
	OwnTrust   *float64    `json:"own_trust"`
	Components []component `json:"components"`
	Reasons    []string    `json:"reasons"`
	Violations []string    `json:"violations"`
	Problems   []string    `json:"problems"`
	RootCauses []rootCause `json:"root_causes"`
}

type historyPoint struct {
	At         int64    `json:"at"`
	Health     *float64 `json:"health"`
	Trust      *float64 `json:"trust"`
	HealthBand string   `json:"health_band"`
	TrustBand  string   `json:"trust_band"`
	Kind       string   `json:"kind"`
	Cause      string   `json:"cause"`
}

type graphNode struct {
	URN        string   `json:"urn"`
	Name       string   `json:"name"`
	Domain     string   `json:"domain"`
	Depth      int      `json:"depth"` // <0 upstream, 0 the product, >0 downstream
	Trust      *float64 `json:"trust"`
	TrustBand  string   `json:"trust_band"`
	HealthBand string   `json:"health_band"`
}

type graphEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
}

type lineageGraph struct {
	Nodes []graphNode `json:"nodes"`
	Edges []graphEdge `json:"edges"`
}

type consumer struct {
	Domain string `json:"domain"`
	Team   string `json:"team"`
	Users  uint64 `json:"users"`
	Reads  uint64 `json:"reads"`
	Last   int64  `json:"last"`
}

type check struct {
	At       int64  `json:"at"`
	Dataset  string `json:"dataset"`
	Name     string `json:"name"`
	Type     string `json:"type"`
	Status   string `json:"status"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

type run struct {
	At      int64  `json:"at"`
	Dataset string `json:"dataset"`
	Job     string `json:"job"`
	RunID   string `json:"run_id"`
	State   string `json:"state"`
}

// apiProduct: GET /api/products/{urn}?days=30&depth=3
func (s *Server) apiProduct(w http.ResponseWriter, r *http.Request) {
	urn := r.PathValue("urn")
	p, current, ok := s.mesh.product(urn)
	if !ok {
		apiError(w, http.StatusNotFound, "no product "+urn)
		return
	}
	days := intParam(r, "days", 30, 1, 400)
	depth := intParam(r, "depth", 3, 1, 10)
	out := struct {
		Product   productInfo    `json:"product"`
		Score     productScore   `json:"score"`
		History   []historyPoint `json:"history"`
		Lineage   lineageGraph   `json:"lineage"`
		Consumers []consumer     `json:"consumers"`
		Checks    []check        `json:"checks"`
		Runs      []run          `json:"runs"`
	}{Product: p, Score: productScore{Score: current}, History: []historyPoint{}, Consumers: []consumer{}, Checks: []check{}, Runs: []run{}}
	out.Lineage = s.productLineage(urn, depth)
	g, ctx := errgroup.WithContext(r.Context())
	g.Go(func() error { return s.productScore(ctx, urn, &out.Score) })
	g.Go(func() error {
		from := time.Now().Add(-time.Duration(days) * 24 * time.Hour).Unix()
		return scanAll(ctx, s.conn, s.q(qHistory), []any{urn, from}, func(rr driver.Rows) error {
			var h historyPoint
			if err := rr.Scan(&h.At, &h.Health, &h.Trust, &h.HealthBand, &h.TrustBand, &h.Kind, &h.Cause); err != nil {
				return err
			}
			out.History = append(out.History, h)
			return nil
		})
	})
	if len(p.Outputs) > 0 {
		g.Go(func() error {
			qctx, err := withURNs(ctx, p.Outputs)
			if err != nil {
				return err
			}
			return scanAll(qctx, s.conn, s.q(qConsumers), nil, func(rr driver.Rows) error {
				var c consumer
				if err := rr.Scan(&c.Domain, &c.Team, &c.Users, &c.Reads, &c.Last); err != nil {
					return err
				}
				out.Consumers = append(out.Consumers, c)
				return nil
			})
		})
		g.Go(func() error {
			qctx, err := withURNs(ctx, p.Outputs)
			if err != nil {
				return err
			}
			return scanAll(qctx, s.conn, s.q(qChecks), nil, func(rr driver.Rows) error {
				var c check
				if err := rr.Scan(&c.At, &c.Dataset, &c.Name, &c.Type, &c.Status, &c.Severity, &c.Message); err != nil {
					return err
				}
				out.Checks = append(out.Checks, c)
				return nil
			})
		})
		g.Go(func() error {
			qctx, err := withURNs(ctx, p.Outputs)
			if err != nil {
				return err
			}
			return scanAll(qctx, s.conn, s.q(qRuns), nil, func(rr driver.Rows) error {
				var x run
				if err := rr.Scan(&x.At, &x.Dataset, &x.Job, &x.RunID, &x.State); err != nil {
					return err
				}
				out.Runs = append(out.Runs, x)
				return nil
			})
		})
	}
	if err := g.Wait(); err != nil {
		apiError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) productScore(ctx context.Context, urn string, out *productScore) error {
	rows, err := s.conn.Query(ctx, s.q(qProductScore), urn)
	if err != nil {
		return err
	}
	defer rows.Close()
	out.Components, out.Reasons, out.Violations, out.Problems, out.RootCauses = []component{}, []string{}, []string{}, []string{}, []rootCause{}
	for rows.Next() {
		var (
			names, details, reasons, violations, problems, cProducts, cBands, cSignals []string
			scores, weights                                                            []float64
			hops                                                                       []uint16
			health, trust                                                              *float64
			hb, tb, cause                                                              string
			at                                                                         int64
		)
		if err := rows.Scan(&health, &trust, &out.OwnTrust, &hb, &tb, &at, &names, &scores, &weights, &details,
			&reasons, &violations, &problems, &cause, &cProducts, &hops, &cBands, &cSignals); err != nil {
			return err
		}
		out.Components = out.Components[:0]
		for i, n := range names {
			out.Components = append(out.Components, component{Name: n, Score: scores[i], Weight: weights[i], Detail: at0(details, i), Characteristic: characteristics[n]})
		}
		out.Reasons, out.Violations, out.Problems = reasons, violations, problems
		out.RootCauses = out.RootCauses[:0]
		for i, p := range cProducts {
			var sig []string
			if s := at0(cSignals, i); s != "" {
				sig = strings.Split(s, "; ")
			}
			out.RootCauses = append(out.RootCauses, rootCause{Product: p, Hops: int(hops[i]), Band: at0(cBands, i), Signals: sig})
		}
		if at >= out.At { // the row just read is as new as the live state or newer
			out.Health, out.Trust, out.HealthBand, out.TrustBand, out.Cause, out.At = health, trust, bandOr(hb), bandOr(tb), cause, at
		}
	}
	return rows.Err()
}

func at0(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}

// productLineage is the product, its upstream and downstream products up
// to depth hops, and the product edges among them, each node with its
// current scores.
func (s *Server) productLineage(urn string, depth int) lineageGraph {
	g := s.graph.Load()
	nodes := map[string]int{urn: 0}
	for _, n := range g.Upstream(urn, depth) {
		nodes[n.URN] = -n.Depth
	}
	for _, n := range g.Downstream(urn, depth) {
		if _, ok := nodes[n.URN]; !ok {
			nodes[n.URN] = n.Depth
		}
	}
	return s.graphOf(g, nodes)
}

func (s *Server) graphOf(g *lineage.Graph, nodes map[string]int) lineageGraph {
	out := lineageGraph{Nodes: []graphNode{}, Edges: []graphEdge{}}
	for p, d := range nodes {
		info, sc, _ := s.mesh.product(p)
		name := info.Name
		if name == "" {
			name = p[strings.LastIndex(p, ":")+1:]
		}
		out.Nodes = append(out.Nodes, graphNode{URN: p, Name: name, Domain: info.Domain, Depth: d, Trust: sc.Trust, TrustBand: sc.TrustBand, HealthBand: sc.HealthBand})
		for _, up := range g.DirectUpstream(p) {
			if _, ok := nodes[up]; ok {
				out.Edges = append(out.Edges, graphEdge{From: up, To: p})
			}
		}
	}
	sort.Slice(out.Nodes, func(i, j int) bool { return out.Nodes[i].URN < out.Nodes[j].URN })
	sort.Slice(out.Edges, func(i, j int) bool {
		return out.Edges[i].From+out.Edges[i].To < out.Edges[j].From+out.Edges[j].To
	})
	return out
}

type columnEdge struct {
	OutputDataset  string `json:"output_dataset"`
	OutputField    string `json:"output_field"`
	InputDataset   string `json:"input_dataset"`
	InputField     string `json:"input_field"`
	Transformation string `json:"transformation"`
}

type usageDay struct {
	Day   string `json:"day"`
	Reads uint64 `json:"reads"`
	Users uint64 `json:"users"`
}

// apiDataset: GET /api/datasets/{urn}
func (s *Server) apiDataset(w http.ResponseWriter, r *http.Request) {
	urn := r.PathValue("urn")
	out := struct {
		URN          string       `json:"urn"`
		Product      string       `json:"product"`
		Domain       string       `json:"domain"`
		Description  string       `json:"description"`
		Fields       []fieldInfo  `json:"fields"`
		Observed     []fieldInfo  `json:"observed_fields"`
		Upstream     []string     `json:"upstream"`
		Downstream   []string     `json:"downstream"`
		Columns      []columnEdge `json:"column_lineage"`
		Usage        []usageDay   `json:"usage"`
		ProductScore *Score       `json:"product_score,omitempty"`
	}{URN: urn, Fields: []fieldInfo{}, Observed: []fieldInfo{}, Upstream: []string{}, Downstream: []string{}, Columns: []columnEdge{}, Usage: []usageDay{}}
	g, ctx := errgroup.WithContext(r.Context())
	g.Go(func() error {
		err := scanAll(ctx, s.conn, s.q(qDatasetOwner), []any{urn}, func(rr driver.Rows) error {
			return rr.Scan(&out.Product, &out.Domain)
		})
		if err != nil || out.Product == "" {
			return err
		}
		return scanAll(ctx, s.conn, s.q(qDeclaredDatasets+" WHERE dataset_urn = ? AND product_urn = ?"), []any{urn, out.Product}, func(rr driver.Rows) error {
			var d datasetInfo
			var names, types, descs, classes []string
			var pii []uint8
			if err := rr.Scan(&d.URN, &d.Product, &d.Domain, &out.Description, &names, &types, &descs, &classes, &pii); err != nil {
				return err
			}
			for i := range names {
				out.Fields = append(out.Fields, fieldInfo{Name: names[i], Type: at(types, i), Description: at(descs, i),
					Classification: at(classes, i), PII: i < len(pii) && pii[i] == 1, Source: "declared"})
			}
			return nil
		})
	})
	g.Go(func() error {
		return scanAll(ctx, s.conn, strings.ReplaceAll(s.q(qObservedFields), "{where}", "WHERE dataset_urn = ?"), []any{urn}, func(rr driver.Rows) error {
			var u, desc string
			var names, types, descs []string
			if err := rr.Scan(&u, &names, &types, &descs, &desc); err != nil {
				return err
			}
			for i := range names {
				out.Observed = append(out.Observed, fieldInfo{Name: names[i], Type: at(types, i), Description: at(descs, i), Source: "openlineage"})
			}
			if out.Description == "" {
				out.Description = desc
			}
			return nil
		})
	})
	g.Go(func() error {
		return scanAll(ctx, s.conn, s.q(qColumnLineage), []any{urn, urn, urn, urn}, func(rr driver.Rows) error {
			var c columnEdge
			if err := rr.Scan(&c.OutputDataset, &c.OutputField, &c.InputDataset, &c.InputField, &c.Transformation); err != nil {
				return err
			}
			out.Columns = append(out.Columns, c)
			return nil
		})
	})
	g.Go(func() error {
		return scanAll(ctx, s.conn, s.q(qDatasetUsage), []any{urn}, func(rr driver.Rows) error {
			var u usageDay
			if err := rr.Scan(&u.Day, &u.Reads, &u.Users); err != nil {
				return err
			}
			out.Usage = append(out.Usage, u)
			return nil
		})
	})
	if err := g.Wait(); err != nil {
		apiError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	gr := s.graph.Load()
	for _, n := range gr.DatasetUpstream(urn, 1) {
		out.Upstream = append(out.Upstream, n.URN)
	}
	for _, n := range gr.DatasetDownstream(urn, 1) {
		out.Downstream = append(out.Downstream, n.URN)
	}
	if out.Product != "" {
		sc := s.mesh.score(out.Product)
		out.ProductScore = &sc
	}
	if out.Product == "" && len(out.Observed) == 0 && len(out.Columns) == 0 && len(out.Upstream) == 0 && len(out.Downstream) == 0 {
		apiError(w, http.StatusNotFound, "no dataset "+urn)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// apiSearch: GET /api/search?q=&limit=
func (s *Server) apiSearch(w http.ResponseWriter, r *http.Request) {
	hits, err := s.search.query(r.URL.Query().Get("q"), intParam(r, "limit", 10, 1, 100), s.mesh)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	type result struct {
		Hit
		Name        string `json:"name"`
		Domain      string `json:"domain"`
		Description string `json:"description"`
	}
	out := []result{}
	for _, h := range hits {
		res := result{Hit: h}
		if h.Kind == "product" {
			p, _, _ := s.mesh.product(h.URN)
			res.Name, res.Domain, res.Description = p.Name, p.Domain, p.Description
		} else {
			res.Name = datasetName(h.URN)
		}
		out = append(out, res)
	}
	writeJSON(w, http.StatusOK, map[string]any{"query": r.URL.Query().Get("q"), "hits": out})
}
