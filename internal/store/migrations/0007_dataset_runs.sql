-- The runs that wrote each dataset, keyed by dataset: the scorer's freshness
-- and run-success signals for some datasets read only their rows, instead
-- of unfolding every run's outputs over 30 days (lineage_runs is keyed by
-- job). One row per output of each run event; deduplicated by event id.
CREATE TABLE IF NOT EXISTS {db}.dataset_runs (
    dataset_urn String,
    event_time DateTime,
    event_time_ms Int64,
    job_urn String,
    run_id String,
    state String,
    event_id String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (dataset_urn, event_time, event_id)
SETTINGS index_granularity = 512;

INSERT INTO {db}.dataset_runs (dataset_urn, event_time, event_time_ms, job_urn, run_id, state, event_id)
SELECT ds, event_time, event_time_ms, job_urn, run_id, state, event_id
FROM {db}.lineage_runs ARRAY JOIN outputs AS ds;
