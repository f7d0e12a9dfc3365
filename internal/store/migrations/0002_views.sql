-- Views that answer an analyst's first questions. All read through FINAL,
-- so a replayed batch is never counted twice.

CREATE VIEW IF NOT EXISTS {db}.products_current AS
SELECT product_urn, domain, name, description, owners, tags, lifecycle, documentation_url,
       output_datasets, input_datasets, freshness_slo_seconds, min_quality_pass_rate, event_time AS declared_at
FROM {db}.products FINAL;

CREATE VIEW IF NOT EXISTS {db}.dataset_fields AS
SELECT dataset_urn, product_urn, domain, field_name, field_type, field_description, field_classification, field_pii
FROM {db}.datasets FINAL
ARRAY JOIN field_names AS field_name, field_types AS field_type, field_descriptions AS field_description,
           field_classifications AS field_classification, field_pii AS field_pii;

CREATE VIEW IF NOT EXISTS {db}.lineage_edges_current AS
SELECT input_dataset, output_dataset, job_urn, last_run_id, last_state, last_seen
FROM {db}.lineage_edges FINAL;

CREATE VIEW IF NOT EXISTS {db}.lineage_runs_latest AS
SELECT job_urn, run_id,
       argMax(state, event_time_ms) AS state,
       min(event_time) AS started_at,
       max(event_time) AS last_event_at,
       argMax(outputs, event_time_ms) AS outputs,
       argMax(rows_written, event_time_ms) AS rows_written,
       argMax(error_message, event_time_ms) AS error_message
FROM {db}.lineage_runs FINAL
GROUP BY job_urn, run_id;

CREATE VIEW IF NOT EXISTS {db}.usage_daily AS
SELECT toDate(event_time) AS day, dataset_urn, owner_domain,
       count() AS reads,
       uniqExact(consumer_user) AS distinct_users,
       uniqExact(consumer_domain) AS distinct_consumer_domains,
       sum(rows_read) AS rows_read
FROM {db}.usage_events FINAL
GROUP BY day, dataset_urn, owner_domain;

CREATE VIEW IF NOT EXISTS {db}.quality_daily AS
SELECT toDate(event_time) AS day, dataset_urn, owner_domain,
       count() AS checks,
       countIf(status = 'PASS') AS passed,
       countIf(status = 'WARN') AS warned,
       countIf(status = 'FAIL') AS failed,
       countIf(status = 'ERROR') AS errored
FROM {db}.quality_results FINAL
GROUP BY day, dataset_urn, owner_domain;

CREATE VIEW IF NOT EXISTS {db}.product_scores_latest AS
SELECT product_urn,
       argMax(domain, computed_at_ms) AS domain,
       max(computed_at) AS computed_at,
       argMax(health, computed_at_ms) AS health,
       argMax(trust, computed_at_ms) AS trust,
       argMax(health_band, computed_at_ms) AS health_band,
       argMax(trust_band, computed_at_ms) AS trust_band,
       argMax(component_names, computed_at_ms) AS component_names,
       argMax(component_scores, computed_at_ms) AS component_scores,
       argMax(component_details, computed_at_ms) AS component_details,
       argMax(reasons, computed_at_ms) AS reasons,
       argMax(violations, computed_at_ms) AS violations
FROM {db}.product_scores
GROUP BY product_urn;

-- Current score components, one row per product and component.
CREATE VIEW IF NOT EXISTS {db}.product_score_components AS
SELECT product_urn, domain, computed_at, component, score, detail
FROM {db}.product_scores_latest
ARRAY JOIN component_names AS component, component_scores AS score, component_details AS detail;

-- Product-level lineage: a product depends on the products owning the
-- datasets it declares as inputs or that runs read to build its outputs.
CREATE VIEW IF NOT EXISTS {db}.product_dependencies AS
SELECT DISTINCT upstream_product, downstream_product FROM (
  SELECT upstream_product, downstream_product FROM (
    SELECT product_urn AS downstream_product, arrayJoin(input_datasets) AS in_ds FROM {db}.products FINAL
  ) AS declared
  ALL INNER JOIN (SELECT dataset_urn AS in_ds, product_urn AS upstream_product FROM {db}.datasets FINAL) AS owners USING in_ds
  UNION ALL
  SELECT upstream_product, downstream_product FROM (
    SELECT out_ds, upstream_product FROM (
      SELECT input_dataset AS in_ds, output_dataset AS out_ds FROM {db}.lineage_edges FINAL
    ) AS edges
    ALL INNER JOIN (SELECT dataset_urn AS in_ds, product_urn AS upstream_product FROM {db}.datasets FINAL) AS input_owners USING in_ds
  ) AS upstreams
  ALL INNER JOIN (SELECT dataset_urn AS out_ds, product_urn AS downstream_product FROM {db}.datasets FINAL) AS output_owners USING out_ds
) AS dependencies
WHERE upstream_product != downstream_product;
