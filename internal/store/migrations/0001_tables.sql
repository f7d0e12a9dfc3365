-- meshpulse base tables. Written for ClickHouse 18.16 and current releases:
-- no DateTime64, LowCardinality, TTL or JSON; millisecond time is an Int64
-- column beside a DateTime.
--
-- Exactly-once effect: every table is a ReplacingMergeTree whose sorting key
-- ends in the event's identity, so a batch replayed after a crash collapses
-- onto the rows it already wrote. Readers use FINAL (the views below do) so
-- duplicates that are not merged yet are never counted. There are no
-- materialized views: they would aggregate duplicates at insert time.
--
-- The append logs the scorer reads per dataset (usage_events,
-- quality_results) have index granules of 512 rows instead of 8192: a
-- dataset has a few hundred rows a month, and the scorer reads the signals
-- of a few datasets at a time, so small granules read ~16 times fewer rows
-- (measured in BENCHMARKS.md). Databases created before 2026-11-29 keep
-- 8192 (a granularity cannot be changed in place): they work, slower.

-- Current declared state of each data product; the newest event wins.
CREATE TABLE IF NOT EXISTS {db}.products (
    product_urn String,
    domain String,
    name String,
    description String,
    owners Array(String),
    tags Array(String),
    lifecycle String,
    documentation_url String,
    access_notes String,
    output_datasets Array(String),
    input_datasets Array(String),
    freshness_slo_seconds Nullable(Int64),
    min_quality_pass_rate Nullable(Float64),
    emitter String,
    event_id String,
    event_time DateTime,
    event_time_ms Int64,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(event_time_ms)
ORDER BY product_urn;

-- Output datasets declared by products, with their fields as parallel arrays
-- (one row per dataset keeps a re-declaration atomic: removed fields vanish).
CREATE TABLE IF NOT EXISTS {db}.datasets (
    dataset_urn String,
    product_urn String,
    domain String,
    platform String,
    description String,
    schema_ref String,
    field_names Array(String),
    field_types Array(String),
    field_descriptions Array(String),
    field_classifications Array(String),
    field_pii Array(UInt8),
    event_id String,
    event_time DateTime,
    event_time_ms Int64,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(event_time_ms)
ORDER BY dataset_urn;

-- Every state change of every job run (append log, deduplicated by event_id).
CREATE TABLE IF NOT EXISTS {db}.lineage_runs (
    job_urn String,
    job_namespace String,
    run_id String,
    state String,
    producer String,
    emitter String,
    inputs Array(String),
    outputs Array(String),
    column_output_datasets Array(String),
    column_output_fields Array(String),
    column_input_datasets Array(String),
    column_input_fields Array(String),
    column_transformations Array(String),
    rows_written Nullable(Int64),
    bytes_written Nullable(Int64),
    error_message String,
    event_id String,
    event_time DateTime,
    event_time_ms Int64,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (job_urn, run_id, event_time, event_id);

-- Current dataset-level lineage graph: one row per (input, output, job),
-- refreshed by every run that reports the edge.
CREATE TABLE IF NOT EXISTS {db}.lineage_edges (
    input_dataset String,
    output_dataset String,
    job_urn String,
    last_run_id String,
    last_state String,
    last_seen DateTime,
    last_seen_ms Int64
) ENGINE = ReplacingMergeTree(last_seen_ms)
ORDER BY (input_dataset, output_dataset, job_urn);

-- Who read what (append log, deduplicated by event_id).
CREATE TABLE IF NOT EXISTS {db}.usage_events (
    event_id String,
    event_time DateTime,
    event_time_ms Int64,
    emitter String,
    dataset_urn String,
    owner_domain String,
    consumer_user String,
    consumer_team String,
    consumer_domain String,
    consumer_tool String,
    access_kind String,
    rows_read Int64,
    duration_ms Int64,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (dataset_urn, event_time, event_id)
SETTINGS index_granularity = 512;

-- Data-quality check results (append log, deduplicated by event_id).
CREATE TABLE IF NOT EXISTS {db}.quality_results (
    event_id String,
    event_time DateTime,
    event_time_ms Int64,
    emitter String,
    dataset_urn String,
    owner_domain String,
    check_name String,
    check_type String,
    status String,
    severity String,
    observed_value Nullable(Float64),
    threshold Nullable(Float64),
    message String,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (dataset_urn, check_name, event_time, event_id)
SETTINGS index_granularity = 512;

-- Every score the scorer computed (history).
CREATE TABLE IF NOT EXISTS {db}.product_scores (
    product_urn String,
    domain String,
    computed_at DateTime,
    computed_at_ms Int64,
    health Float64,
    trust Float64,
    health_band String,
    trust_band String,
    component_names Array(String),
    component_scores Array(Float64),
    component_weights Array(Float64),
    component_details Array(String),
    reasons Array(String),
    violations Array(String),
    cause String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(computed_at)
ORDER BY (product_urn, computed_at_ms);
