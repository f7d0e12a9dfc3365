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
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kfake"

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

// Kafka starts an in-process broker, closed when the test ends.
func Kafka(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
