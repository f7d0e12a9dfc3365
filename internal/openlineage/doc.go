// Package openlineage is meshpulse's second way in: OpenLineage events, as
// the tools domains already run (Airflow, dbt, Spark, the OpenLineage
// clients) send them, over HTTP (POST /api/v1/lineage, the HTTP transport)
// and on mesh.<domain>.openlineage (the Kafka transport).
//
// It holds the official OpenLineage JSON schemas (spec/, embedded, version
// in SpecVersion), validates events against them as leniently as real
// producers need, maps an event onto meshpulse's own events and rows (runs,
// column lineage, quality results, dataset fields, statistics) and serves
// the HTTP endpoint, which only validates, authenticates and publishes to
// Kafka: every event then takes the ingestor's one path into ClickHouse.
//
// It must not write to ClickHouse or decide ownership: the ingestor does
// both, for OpenLineage events exactly as for native ones.
package openlineage
