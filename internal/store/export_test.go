package store

// MigrateUpTo exposes migrateUpTo to the tests of upgrades.
var MigrateUpTo = migrateUpTo
