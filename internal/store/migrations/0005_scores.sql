-- Scores at scale: current scores in a table ordered by product, history
-- written only when a score changes (plus a daily snapshot) and dropped by
-- month, unknown scores as NULL, root causes with every score.

-- The current score of every product (one row per product once merged).
CREATE TABLE IF NOT EXISTS {db}.scores_current (
    product_urn String,
    domain String,
    computed_at DateTime,
    computed_at_ms Int64,
    health Nullable(Float64),
    trust Nullable(Float64),
    own_trust Nullable(Float64),
    health_band String,
    trust_band String,
    component_names Array(String),
    component_scores Array(Float64),
    component_weights Array(Float64),
    component_details Array(String),
    reasons Array(String),
    violations Array(String),
    problems Array(String),
    cause String,
    root_cause_products Array(String),
    root_cause_hops Array(UInt16),
    root_cause_bands Array(String),
    root_cause_signals Array(String)
) ENGINE = ReplacingMergeTree(computed_at_ms)
ORDER BY product_urn;

-- Score history: a row when a product's score or band changes, and one per
-- product per day (kind = 'snapshot'). Old months are dropped by the scorer
-- (-history-retention); 18.16 has no TTL.
CREATE TABLE IF NOT EXISTS {db}.score_history (
    product_urn String,
    domain String,
    computed_at DateTime,
    computed_at_ms Int64,
    kind String,
    health Nullable(Float64),
    trust Nullable(Float64),
    health_band String,
    trust_band String,
    component_names Array(String),
    component_scores Array(Float64),
    component_weights Array(Float64),
    component_details Array(String),
    reasons Array(String),
    violations Array(String),
    cause String,
    root_cause_products Array(String),
    root_cause_hops Array(UInt16),
    root_cause_bands Array(String),
    root_cause_signals Array(String)
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(computed_at)
ORDER BY (product_urn, computed_at_ms);

INSERT INTO {db}.score_history (product_urn, domain, computed_at, computed_at_ms, kind, health, trust, health_band, trust_band,
    component_names, component_scores, component_weights, component_details, reasons, violations, cause)
SELECT product_urn, domain, computed_at, computed_at_ms, 'change', health, trust, health_band, trust_band,
    component_names, component_scores, component_weights, component_details, reasons, violations, cause
FROM {db}.product_scores;
