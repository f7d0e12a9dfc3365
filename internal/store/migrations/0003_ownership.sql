-- Ownership that every ingestor replica resolves the same way.
--
-- dataset_claims: every accepted declaration of a dataset as a product's
-- output. The owner of a dataset is its earliest claim (event time, then
-- event id): a replica refuses a declaration of a dataset another domain
-- owns, so two domains only both hold claims when two replicas accepted them
-- at the same time, and then every replica picks the same one.
CREATE TABLE IF NOT EXISTS {db}.dataset_claims (
    dataset_urn String,
    domain String,
    product_urn String,
    claimed_at DateTime,
    claimed_at_ms Int64,
    event_id String
) ENGINE = ReplacingMergeTree()
ORDER BY (dataset_urn, claimed_at_ms, event_id, domain, product_urn);

-- dataset_declarations: each product's declaration of each of its output
-- datasets (the newest per product), so that a losing claim never hides the
-- owner's fields. It replaces the table datasets, which kept one
-- declaration per dataset, whichever came last.
CREATE TABLE IF NOT EXISTS {db}.dataset_declarations (
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
ORDER BY (dataset_urn, product_urn);

INSERT INTO {db}.dataset_declarations (dataset_urn, product_urn, domain, platform, description, schema_ref,
    field_names, field_types, field_descriptions, field_classifications, field_pii, event_id, event_time, event_time_ms)
SELECT dataset_urn, product_urn, domain, platform, description, schema_ref,
    field_names, field_types, field_descriptions, field_classifications, field_pii, event_id, event_time, event_time_ms
FROM {db}.datasets;

INSERT INTO {db}.dataset_claims (dataset_urn, domain, product_urn, claimed_at, claimed_at_ms, event_id)
SELECT dataset_urn, domain, product_urn, event_time, event_time_ms, event_id FROM {db}.datasets FINAL;

-- The owner of each dataset.
CREATE VIEW IF NOT EXISTS {db}.dataset_owners AS
SELECT dataset_urn, domain, product_urn, claimed_at, claimed_at_ms, event_id
FROM {db}.dataset_claims
ORDER BY dataset_urn, claimed_at_ms, event_id
LIMIT 1 BY dataset_urn;
