-- Distinct consumers per dataset and day, as uniq states: the scorer's
-- adoption signal merges one row per dataset and whole day of its windows
-- instead of counting every read of 14 days again on each pass (usage is
-- the largest log: billions of rows in a large mesh). The days at the
-- windows' edges are still read from usage_events.
--
-- The one materialized view of the schema. It keeps exactly-once: a uniq
-- state merged with itself is the same state, so a replayed batch (the
-- ingestor retries an INSERT, or a takeover re-reads uncommitted records)
-- adds nothing, as ReplacingMergeTree makes a replay add nothing to the
-- logs. The view is created before the backfill, so rows inserted while the
-- backfill runs are counted once or twice, which is the same.
CREATE TABLE IF NOT EXISTS {db}.usage_consumers_daily (
    day Date,
    dataset_urn String,
    consumers AggregateFunction(uniq, String)
) ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (dataset_urn, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.usage_consumers_daily_mv TO {db}.usage_consumers_daily AS
SELECT toDate(event_time) AS day, dataset_urn, uniqState(consumer_user) AS consumers
FROM {db}.usage_events
GROUP BY day, dataset_urn;

INSERT INTO {db}.usage_consumers_daily (day, dataset_urn, consumers)
SELECT toDate(event_time) AS day, dataset_urn, uniqState(consumer_user)
FROM {db}.usage_events
GROUP BY day, dataset_urn;
