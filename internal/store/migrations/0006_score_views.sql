-- product_scores becomes a view over score_history; the latest score reads
-- the current-scores table instead of grouping the whole history; the
-- daily views cover the accepted event-time window (92 days) instead of
-- running FINAL over whole logs.
DROP TABLE IF EXISTS {db}.product_score_components;
DROP TABLE IF EXISTS {db}.product_scores_latest;
DROP TABLE IF EXISTS {db}.product_scores;
DROP TABLE IF EXISTS {db}.usage_daily;
DROP TABLE IF EXISTS {db}.quality_daily;
DROP TABLE IF EXISTS {db}.lineage_runs_latest;

CREATE VIEW IF NOT EXISTS {db}.product_scores AS
SELECT product_urn, domain, computed_at, computed_at_ms, kind, health, trust, health_band, trust_band,
       component_names, component_scores, component_weights, component_details, reasons, violations, cause,
       root_cause_products, root_cause_hops, root_cause_bands, root_cause_signals
FROM {db}.score_history;

CREATE VIEW IF NOT EXISTS {db}.product_scores_latest AS
SELECT product_urn, domain, computed_at, health, trust, health_band, trust_band, component_names, component_scores,
       component_details, reasons, violations, cause, root_cause_products, root_cause_hops, root_cause_bands, root_cause_signals
FROM {db}.scores_current FINAL;

-- Current score components, one row per product and component.
CREATE VIEW IF NOT EXISTS {db}.product_score_components AS
SELECT product_urn, domain, computed_at, component, score, detail
FROM {db}.product_scores_latest
ARRAY JOIN component_names AS component, component_scores AS score, component_details AS detail;

CREATE VIEW IF NOT EXISTS {db}.usage_daily AS
SELECT toDate(event_time) AS day, dataset_urn, owner_domain,
       count() AS reads,
       uniqExact(consumer_user) AS distinct_users,
       uniqExact(consumer_domain) AS distinct_consumer_domains,
       sum(rows_read) AS rows_read
FROM {db}.usage_events FINAL
WHERE event_time >= toDateTime(today() - 92)
GROUP BY day, dataset_urn, owner_domain;

CREATE VIEW IF NOT EXISTS {db}.quality_daily AS
SELECT toDate(event_time) AS day, dataset_urn, owner_domain,
       count() AS checks,
       countIf(status = 'PASS') AS passed,
       countIf(status = 'WARN') AS warned,
       countIf(status = 'FAIL') AS failed,
       countIf(status = 'ERROR') AS errored
FROM {db}.quality_results FINAL
WHERE event_time >= toDateTime(today() - 92)
GROUP BY day, dataset_urn, owner_domain;

CREATE VIEW IF NOT EXISTS {db}.lineage_runs_latest AS
SELECT job_urn, run_id,
       argMax(state, event_time_ms) AS state,
       min(event_time) AS started_at,
       max(event_time) AS last_event_at,
       argMax(outputs, event_time_ms) AS outputs,
       argMax(rows_written, event_time_ms) AS rows_written,
       argMax(error_message, event_time_ms) AS error_message
FROM {db}.lineage_runs FINAL
WHERE event_time >= toDateTime(today() - 92)
GROUP BY job_urn, run_id;
