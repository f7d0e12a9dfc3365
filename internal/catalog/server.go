package catalog

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/meshpulse/meshpulse/pkg/events"
	"github.com/meshpulse/meshpulse/pkg/lineage"
)

// Config of the catalog.
type Config struct {
	// Listen is the address of the pages and the API.
	Listen string
	// Refresh rereads products, the lineage graph and the search index this
	// often (declarations change rarely; scores are followed live).
	Refresh time.Duration
	// LivePoll reads the scores that changed this often, for the open pages.
	LivePoll time.Duration
}

// RegisterFlags adds the catalog's flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", ":8088", "address of the catalog pages and /api/ (env MESHPULSE_LISTEN)")
	fs.DurationVar(&c.Refresh, "refresh", 30*time.Second, "reread products, lineage and the search index this often (env MESHPULSE_REFRESH)")
	fs.DurationVar(&c.LivePoll, "live-poll", 2*time.Second, "read changed scores for the open pages this often (env MESHPULSE_LIVE_POLL)")
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("listen address is required"))
	}
	if c.Refresh <= 0 || c.LivePoll <= 0 {
		errs = append(errs, errors.New("refresh and live poll must be positive"))
	}
	return errors.Join(errs...)
}

// Server serves the catalog.
type Server struct {
	cfg    Config
	conn   driver.Conn
	db     string
	kopts  []kgo.Opt
	codecs *events.Codecs
	log    zerolog.Logger

	graph  atomic.Pointer[lineage.Graph]
	mesh   *meshState
	search *searchIndex
	hub    *hub
	ready  atomic.Bool
}

// New builds the catalog over a ClickHouse database and the Kafka cluster
// whose mesh.scores it follows.
func New(cfg Config, conn driver.Conn, db string, kafkaOpts []kgo.Opt, codecs *events.Codecs, log zerolog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	idx, err := newSearchIndex(searchShards())
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, conn: conn, db: db, kopts: kafkaOpts, codecs: codecs, log: log,
		mesh: newMeshState(), search: idx, hub: newHub()}
	s.graph.Store(lineage.New())
	return s, nil
}

// Ready reports whether the first load is done.
func (s *Server) Ready() bool { return s.ready.Load() }

// Handler is the catalog's HTTP handler: the pages and /api/.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/mesh", s.apiMesh)
	mux.HandleFunc("GET /api/products/{urn...}", s.apiProduct)
	mux.HandleFunc("GET /api/datasets/{urn...}", s.apiDataset)
	mux.HandleFunc("GET /api/search", s.apiSearch)
	mux.HandleFunc("GET /api/live", s.apiLive)
	mux.Handle("GET /", webHandler())
	return timed(mux)
}

// Run loads the mesh, serves, and keeps everything current until ctx ends;
// listening, when set, gets the bound address.
func (s *Server) Run(ctx context.Context, listening func(addr string)) error {
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("catalog listen: %w", err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.hub.close()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error { return s.keepCurrent(gctx) })
	g.Go(func() error { return s.followAlerts(gctx) })
	s.log.Info().Str("url", "http://"+l.Addr().String()+"/").Msg("serving the catalog")
	if listening != nil {
		listening(l.Addr().String())
	}
	return g.Wait()
}

// newProductReload bounds how often scores of products the catalog has
// not loaded yet make it load again before the Refresh is due.
const newProductReload = 5 * time.Second

// keepCurrent loads everything, then polls changed scores every LivePoll
// and reloads declarations, lineage and the index every Refresh, and
// sooner when a score names a product it has not loaded. A
// ClickHouse that is not there yet is waited for.
func (s *Server) keepCurrent(ctx context.Context) error {
	var lastLoad time.Time
	poll := time.NewTicker(s.cfg.LivePoll)
	defer poll.Stop()
	for {
		if time.Since(lastLoad) >= s.cfg.Refresh || !s.ready.Load() {
			if err := s.load(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.log.Warn().Err(err).Msg("catalog: loading the mesh failed; retrying")
			} else {
				lastLoad = time.Now()
				s.ready.Store(true)
			}
		} else if changed, err := s.pollScores(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.log.Warn().Err(err).Msg("catalog: reading changed scores failed")
		} else {
			for _, p := range changed {
				s.hub.publish(liveEvent{Kind: "score", Score: &p})
			}
			// A score of a product declared since the last load: load
			// again now rather than at the next Refresh (at most every
			// newProductReload), so a new product shows within a poll.
			if s.mesh.anyUnknown(changed) && time.Since(lastLoad) >= newProductReload {
				lastLoad = time.Time{}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
		}
	}
}

// load reads products, datasets, scores and the lineage graph, and
// reindexes what changed.
func (s *Server) load(ctx context.Context) error {
	start := time.Now()
	products, err := s.loadProducts(ctx)
	if err != nil {
		return err
	}
	datasets, err := s.loadDatasets(ctx)
	if err != nil {
		return err
	}
	scores, err := s.loadScores(ctx, 0)
	if err != nil {
		return err
	}
	g, err := lineage.LoadClickHouse(ctx, s.conn, s.db)
	if err != nil {
		return err
	}
	s.graph.Store(g)
	s.mesh.replace(products, scores)
	usage, err := s.loadUsage(ctx)
	if err != nil {
		return err
	}
	n, err := s.search.update(products, datasets, usage)
	if err != nil {
		return err
	}
	s.log.Debug().Int("products", len(products)).Int("datasets", len(datasets)).Int("reindexed", n).
		Dur("took", time.Since(start)).Msg("catalog loaded")
	return nil
}

// timed adds the server time to every answer (Server-Timing), which the
// benchmark reads.
func timed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		tw := &timingWriter{ResponseWriter: w, start: start}
		h.ServeHTTP(tw, r)
	})
}

type timingWriter struct {
	http.ResponseWriter
	start time.Time
	once  sync.Once
}

func (t *timingWriter) WriteHeader(code int) {
	t.once.Do(func() {
		t.Header().Set("Server-Timing", fmt.Sprintf("app;dur=%.1f", float64(time.Since(t.start).Microseconds())/1000))
	})
	t.ResponseWriter.WriteHeader(code)
}

func (t *timingWriter) Write(b []byte) (int, error) {
	t.once.Do(func() {
		t.Header().Set("Server-Timing", fmt.Sprintf("app;dur=%.1f", float64(time.Since(t.start).Microseconds())/1000))
	})
	return t.ResponseWriter.Write(b)
}

// Flush lets server-sent events through the timing wrapper.
func (t *timingWriter) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Close releases the search index, once Run has returned.
func (s *Server) Close() { s.search.close() }
