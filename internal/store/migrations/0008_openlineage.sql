-- OpenLineage in. Runs, lineage, column lineage and quality assertions of
-- OpenLineage events land in the native tables (lineage_runs,
-- lineage_edges, dataset_runs, quality_results); these tables keep the
-- rest: the raw event, what events say about datasets, and statistics.

-- Every OpenLineage event as it arrived (raw: the JSON, so custom facets
-- stay queryable: visitParamExtractRaw(raw, 'myFacet') on 18.16,
-- JSONExtractRaw(raw, 'run', 'facets', 'myFacet') on current releases),
-- with the identity and parent run an analyst filters on. Deduplicated by
-- event_id, which is derived from the event's bytes.
CREATE TABLE IF NOT EXISTS {db}.openlineage_events (
    event_id String,
    event_time DateTime,
    event_time_ms Int64,
    kind String,
    event_type String,
    emitter String,
    domain String,
    job_namespace String,
    job_name String,
    job_urn String,
    run_id String,
    parent_run_id String,
    parent_job_namespace String,
    parent_job_name String,
    root_run_id String,
    job_description String,
    job_owners Array(String),
    producer String,
    schema_url String,
    inputs Array(String),
    outputs Array(String),
    raw String,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (job_namespace, job_name, event_time, event_id);

-- What OpenLineage events said about datasets: one row per dataset per
-- event that carried a schema, ownership, documentation or symlinks facet;
-- has_* say which aspects the row carries, so an event without a schema
-- facet does not erase the fields an earlier one reported.
CREATE TABLE IF NOT EXISTS {db}.openlineage_datasets (
    dataset_urn String,
    namespace String,
    name String,
    has_schema UInt8,
    field_names Array(String),
    field_types Array(String),
    field_descriptions Array(String),
    has_owners UInt8,
    owners Array(String),
    owner_types Array(String),
    has_description UInt8,
    description String,
    aliases Array(String),
    emitter String,
    event_id String,
    event_time DateTime,
    event_time_ms Int64,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (dataset_urn, event_time, event_id)
SETTINGS index_granularity = 512;

-- Rows, bytes and files read or written by runs, and column metrics
-- (inputStatistics, outputStatistics, dataQualityMetrics). In the column
-- arrays -1 (counts) and nan (min, max) mean "not reported".
CREATE TABLE IF NOT EXISTS {db}.dataset_statistics (
    dataset_urn String,
    direction String,
    facet String,
    job_urn String,
    run_id String,
    row_count Nullable(Int64),
    bytes Nullable(Int64),
    file_count Nullable(Int64),
    column_names Array(String),
    column_null_counts Array(Int64),
    column_distinct_counts Array(Int64),
    column_min Array(Float64),
    column_max Array(Float64),
    emitter String,
    event_id String,
    event_time DateTime,
    event_time_ms Int64,
    ingested_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (dataset_urn, event_time, event_id, facet, direction)
SETTINGS index_granularity = 512;

-- The latest of each aspect OpenLineage reported for each dataset.
CREATE VIEW IF NOT EXISTS {db}.openlineage_datasets_current AS
SELECT dataset_urn,
       any(namespace) AS namespace,
       any(name) AS name,
       argMaxIf(field_names, event_time_ms, has_schema = 1) AS field_names,
       argMaxIf(field_types, event_time_ms, has_schema = 1) AS field_types,
       argMaxIf(field_descriptions, event_time_ms, has_schema = 1) AS field_descriptions,
       argMaxIf(owners, event_time_ms, has_owners = 1) AS owners,
       argMaxIf(description, event_time_ms, has_description = 1) AS description,
       groupUniqArrayArray(aliases) AS aliases,
       max(event_time) AS last_seen
FROM {db}.openlineage_datasets FINAL
GROUP BY dataset_urn;

-- Fields as OpenLineage producers observed them (dataset_fields holds the
-- fields products declare).
CREATE VIEW IF NOT EXISTS {db}.openlineage_dataset_fields AS
SELECT dataset_urn, field_name, field_type, field_description
FROM {db}.openlineage_datasets_current
ARRAY JOIN field_names AS field_name, field_types AS field_type, field_descriptions AS field_description;

-- Symlinks: other names of a dataset.
CREATE VIEW IF NOT EXISTS {db}.dataset_aliases AS
SELECT dataset_urn, alias_urn
FROM {db}.openlineage_datasets_current
ARRAY JOIN aliases AS alias_urn;

-- Column lineage of the last 92 days, from native and OpenLineage runs.
CREATE VIEW IF NOT EXISTS {db}.column_lineage AS
SELECT output_dataset, output_field, input_dataset, input_field, transformation, job_urn,
       max(event_time) AS last_seen
FROM {db}.lineage_runs FINAL
ARRAY JOIN column_output_datasets AS output_dataset, column_output_fields AS output_field,
           column_input_datasets AS input_dataset, column_input_fields AS input_field,
           column_transformations AS transformation
WHERE event_time >= now() - INTERVAL 92 DAY
GROUP BY output_dataset, output_field, input_dataset, input_field, transformation, job_urn;
