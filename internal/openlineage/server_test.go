package openlineage_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/openlineage"
	"github.com/meshpulse/meshpulse/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const salesKey = "sales-key-0123456789"

func event(namespace string) string {
	return `{"eventType": "START", "eventTime": "` + time.Now().UTC().Format(time.RFC3339Nano) + `",
	  "producer": "https://example.com/test", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
	  "run": {"runId": "0193b9a0-0000-7000-8000-000000000001"}, "job": {"namespace": "` + namespace + `", "name": "orders"},
	  "outputs": [{"namespace": "s3://lake", "name": "orders"}]}`
}

// serve starts the endpoint on brokers and returns its URL.
func serve(t *testing.T, brokers []string, cfg openlineage.ServerConfig) string {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.ProduceTimeout == 0 {
		cfg.ProduceTimeout = 5 * time.Second
	}
	srv, err := openlineage.NewServer(cfg, []kgo.Opt{kgo.SeedBrokers(brokers...)}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, func(a string) { addr <- a }) }()
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	select {
	case a := <-addr:
		return "http://" + a + openlineage.Path
	case err := <-done:
		t.Fatal(err)
	}
	return ""
}

type request struct {
	method, auth, encoding string
	body                   []byte
}

func post(t *testing.T, url string, r request) (int, openlineage.Answer) {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	req, _ := http.NewRequest(r.method, url, bytes.NewReader(r.body))
	req.Header.Set("Content-Type", "application/json")
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	if r.encoding != "" {
		req.Header.Set("Content-Encoding", r.encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans openlineage.Answer
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &ans); err != nil {
		t.Fatalf("answer %q: %v", raw, err)
	}
	return resp.StatusCode, ans
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

func TestServerAnswers(t *testing.T) {
	brokers := testenv.Kafka(t)
	adm, _ := kgo.NewClient(kgo.SeedBrokers(brokers...))
	defer adm.Close()
	if err := kafka.EnsureTopics(context.Background(), adm, 1, 1, kafka.OpenLineageTopics([]string{"sales"})...); err != nil {
		t.Fatal(err)
	}
	url := serve(t, brokers, openlineage.ServerConfig{Keys: "sales:" + salesKey, Namespaces: "dbt-finance=finance"})
	big := strings.Replace(event("dbt-sales"), `"name": "orders"}`, `"name": "orders", "facets": {"x": {"_producer": "p", "_schemaURL": "s", "pad": "`+strings.Repeat("a", 70<<10)+`"}}}`, 1)
	for _, c := range []struct {
		name    string
		req     request
		code    int
		problem string
	}{
		{"valid, gzip", request{auth: "Bearer " + salesKey, encoding: "gzip", body: gz(event("dbt-sales"))}, 201, ""},
		{"valid, plain", request{auth: "Bearer " + salesKey, body: []byte(event("dbt-sales"))}, 201, ""},
		{"no key", request{body: []byte(event("dbt-sales"))}, 401, "API key is required"},
		{"unknown key", request{auth: "Bearer nope-nope-nope-nope", body: []byte(event("dbt-sales"))}, 401, "unknown API key"},
		{"basic auth", request{auth: "Basic c2FsZXM6eA==", body: []byte(event("dbt-sales"))}, 401, "Bearer <key>"},
		{"another domain's job", request{auth: "Bearer " + salesKey, body: []byte(event("dbt-finance"))}, 403, `belongs to domain "finance"`},
		{"invalid", request{auth: "Bearer " + salesKey, body: []byte(`{"eventType": "START"}`)}, 400, "missing properties"},
		{"not json", request{auth: "Bearer " + salesKey, body: []byte(`<xml/>`)}, 400, "not a JSON object"},
		{"bad gzip", request{auth: "Bearer " + salesKey, encoding: "gzip", body: []byte(event("dbt-sales"))}, 400, "gzip"},
		{"too large", request{auth: "Bearer " + salesKey, body: []byte(big)}, 413, "larger than the limit"},
		{"too large once unzipped", request{auth: "Bearer " + salesKey, encoding: "gzip", body: gz(big)}, 413, "larger than the limit"},
		{"GET", request{method: http.MethodGet, auth: "Bearer " + salesKey}, 405, "POST"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, ans := post(t, url, c.req)
			if code != c.code {
				t.Fatalf("status %d, want %d: %+v", code, c.code, ans)
			}
			text := ans.Error + " " + strings.Join(ans.Problems, " ")
			if c.problem != "" && !strings.Contains(text, c.problem) {
				t.Errorf("answer %q does not say %q", text, c.problem)
			}
			if code == 201 && (ans.EventID == "" || ans.Topic != "mesh.sales.openlineage") {
				t.Errorf("accepted answer %+v", ans)
			}
		})
	}

	// What was accepted is on the domain's topic, as sent (decompressed).
	cl, _ := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("mesh.sales.openlineage"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < 2 && ctx.Err() == nil {
		got = append(got, cl.PollFetches(ctx).Records()...)
	}
	if len(got) != 2 {
		t.Fatalf("%d records on the topic, want 2", len(got))
	}
	for _, r := range got {
		if !json.Valid(r.Value) || string(r.Key) != "urn:mesh:job:sales:dbt-sales/orders" {
			t.Errorf("record key %q value %.60q", r.Key, r.Value)
		}
	}
}

// Without Kafka the endpoint answers 503 (the client retries), never 2xx.
func TestServerUnavailableWithoutKafka(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "mesh.platform.openlineage"))
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, cluster.ListenAddrs(), openlineage.ServerConfig{Anonymous: "platform", ProduceTimeout: time.Second})
	if code, ans := post(t, url, request{body: []byte(event("etl"))}); code != 201 {
		t.Fatalf("with kafka: %d %+v", code, ans)
	}
	cluster.Close()
	code, ans := post(t, url, request{body: []byte(event("etl"))})
	if code != 503 {
		t.Fatalf("without kafka: %d %+v, want 503", code, ans)
	}
	fmt.Println("answer without kafka:", ans.Error)
}

func TestServerConfigRefusesBadKeys(t *testing.T) {
	for _, c := range []struct {
		cfg  openlineage.ServerConfig
		want string
	}{
		{openlineage.ServerConfig{Listen: ":0", MaxBodyBytes: 1, ProduceTimeout: time.Second}, "every request would be refused"},
		{openlineage.ServerConfig{Listen: ":0", MaxBodyBytes: 1, ProduceTimeout: time.Second, Keys: "sales:short"}, "shorter than 16"},
		{openlineage.ServerConfig{Listen: ":0", MaxBodyBytes: 1, ProduceTimeout: time.Second, Keys: "Sales:" + salesKey}, "lower-case"},
		{openlineage.ServerConfig{Listen: ":0", MaxBodyBytes: 1, ProduceTimeout: time.Second, Keys: "sales:" + salesKey + ",finance:" + salesKey}, "one key is given to"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", c.cfg, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), salesKey) {
			t.Errorf("the error shows the key: %v", err)
		}
	}
}
