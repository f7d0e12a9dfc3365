package store

import (
	"context"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// MigrateUpTo exposes migrateUpTo to the tests of upgrades.
func MigrateUpTo(ctx context.Context, conn driver.Conn, db string, upTo int) ([]int, error) {
	return migrateUpTo(ctx, conn, db, "", upTo)
}
