// Package testenv gives integration tests their real servers: a private
// ClickHouse (started once per test binary with chserver, or the one named
// by MESHPULSE_TEST_CLICKHOUSE) and in-process Kafka clusters (kfake). When
// a server cannot be had, a test skips, except under CI=true, where it fails.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/chserver"
	"github.com/meshpulse/meshpulse/internal/store"
)

var (
	chOnce   sync.Once
	chServer *chserver.Server
	chAddr   string
	chErr    error
	chDir    string
)

// Main wraps testing.M.Run so the private ClickHouse is stopped at the end.
// Use it as: func TestMain(m *testing.M) { testenv.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if chServer != nil {
		_ = chServer.Stop()
	}
	if chDir != "" {
		_ = os.RemoveAll(chDir)
	}
	os.Exit(code)
}

// Unavailable skips the test, or fails it under CI=true.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and a required server is unavailable: %s", msg)
	}
	t.Skip(msg)
}

// ClickHouseAddr returns the native address of a ClickHouse server.
func ClickHouseAddr(t testing.TB) string {
	t.Helper()
	chOnce.Do(func() {
		if addr := os.Getenv("MESHPULSE_TEST_CLICKHOUSE"); addr != "" {
			chAddr = addr
			return
		}
		chDir, chErr = os.MkdirTemp("", "meshpulse-test-clickhouse-")
		if chErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		chServer, chErr = chserver.Start(ctx, chDir, 0, 0)
		if chErr == nil {
			chAddr = chServer.Addr()
		}
	})
	if chErr != nil {
		Unavailable(t, "clickhouse: %v", chErr)
	}
	return chAddr
}

// ClickHouse returns a store config for a fresh, migrated database of its
// own (dropped when the test ends) and a connection to it.
func ClickHouse(t testing.TB) (store.Config, driver.Conn) {
	t.Helper()
	cfg := store.Config{Addr: ClickHouseAddr(t), Database: "test_" + randomHex(6), User: "default"}
	ctx := context.Background()
	conn, err := store.Open(ctx, cfg)
	if err != nil {
		Unavailable(t, "clickhouse at %s: %v", cfg.Addr, err)
	}
	if _, err := store.Migrate(ctx, conn, cfg.Database); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database)
		conn.Close()
	})
	return cfg, conn
}

// KafkaKind says which broker the integration tests run against:
// MESHPULSE_TEST_KAFKA=kfake (the default: a fresh in-process cluster per
// test) or apache (the Apache Kafka broker at MESHPULSE_TEST_KAFKA_BROKERS,
// started by scripts/kafka-up; tests then share it and must run with -p 1).
func KafkaKind() string {
	if k := os.Getenv("MESHPULSE_TEST_KAFKA"); k != "" {
		return k
	}
	return "kfake"
}

// Kafka returns the seed brokers of a broker for one test. On kfake the
// cluster is new and closed when the test ends; on Apache Kafka every
// non-internal topic and every consumer group is deleted first, so each test
// starts from an empty broker as it would on kfake.
func Kafka(t testing.TB) []string {
	t.Helper()
	switch KafkaKind() {
	case "kfake":
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatalf("kfake: %v", err)
		}
		t.Cleanup(c.Close)
		return c.ListenAddrs()
	case "apache":
		brokers := strings.Split(os.Getenv("MESHPULSE_TEST_KAFKA_BROKERS"), ",")
		if brokers[0] == "" {
			Unavailable(t, "MESHPULSE_TEST_KAFKA=apache needs MESHPULSE_TEST_KAFKA_BROKERS (scripts/kafka-up start DIR)")
		}
		if err := wipe(brokers); err != nil {
			Unavailable(t, "apache kafka at %v: %v", brokers, err)
		}
		return brokers
	}
	t.Fatalf("MESHPULSE_TEST_KAFKA=%q: want kfake or apache", KafkaKind())
	return nil
}

// wipe deletes every non-internal topic and every group, and waits until
// the deletions are complete (Kafka deletes topics asynchronously).
func wipe(brokers []string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		groups, err := adm.ListGroups(ctx)
		if err != nil {
			return fmt.Errorf("list groups: %w", err)
		}
		if names := groups.Groups(); len(names) > 0 {
			_, _ = adm.DeleteGroups(ctx, names...)
		}
		topics, err := adm.ListTopics(ctx)
		if err != nil {
			return fmt.Errorf("list topics: %w", err)
		}
		names := topics.Names()
		if len(names) == 0 && len(groups.Groups()) == 0 {
			return nil
		}
		if len(names) > 0 {
			if _, err := adm.DeleteTopics(ctx, names...); err != nil {
				return fmt.Errorf("delete topics: %w", err)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("broker not empty after 60s: topics %v, groups %v", names, groups.Groups())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// SecureUsers are the SCRAM-SHA-512 principals of a secure test broker;
// each password is the name plus "-secret". admin is the super user.
var SecureUsers = []string{"admin", "ingestor", "scorer", "sales", "finance"}

// SecureKafka starts a broker with SASL/SCRAM-SHA-512 and ACLs enforced
// (no ACL means deny) and the SecureUsers: kfake in-process, or with
// MESHPULSE_TEST_KAFKA=apache an Apache Kafka of its own from
// scripts/kafka-up --sasl. It is stopped when the test ends.
func SecureKafka(t testing.TB) []string {
	t.Helper()
	switch KafkaKind() {
	case "kfake":
		opts := []kfake.Opt{kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(),
			kfake.Superuser("SCRAM-SHA-512", "admin", "admin-secret")}
		for _, u := range SecureUsers[1:] {
			opts = append(opts, kfake.User("SCRAM-SHA-512", u, u+"-secret"))
		}
		c, err := kfake.NewCluster(opts...)
		if err != nil {
			t.Fatalf("kfake: %v", err)
		}
		t.Cleanup(c.Close)
		return c.ListenAddrs()
	case "apache":
		dir := t.TempDir()
		script, _ := filepath.Abs(filepath.Join(ModuleRoot(t), "scripts", "kafka-up"))
		if out, err := exec.Command(script, "start", dir, "--sasl").CombinedOutput(); err != nil {
			Unavailable(t, "scripts/kafka-up --sasl: %v\n%s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command(script, "stop", dir).Run() })
		env, err := os.ReadFile(filepath.Join(dir, "env"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(env), "\n") {
			if b, ok := strings.CutPrefix(line, "BROKERS="); ok {
				return []string{b}
			}
		}
		t.Fatalf("no BROKERS in %s/env", dir)
	}
	t.Fatalf("MESHPULSE_TEST_KAFKA=%q: want kfake or apache", KafkaKind())
	return nil
}

// ModuleRoot finds the directory holding go.mod above the test's directory.
func ModuleRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// PrivateClickHouse starts a ClickHouse server of the test's own, for tests
// that stop and restart it; it is stopped when the test ends.
func PrivateClickHouse(t testing.TB) *chserver.Server {
	t.Helper()
	if _, err := chserver.Binary(); err != nil {
		Unavailable(t, "%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := chserver.Start(ctx, t.TempDir(), 0, 0)
	if err != nil {
		t.Fatalf("private clickhouse: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return srv
}
