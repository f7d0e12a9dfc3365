-- datasets becomes a view: for each dataset, the declaration of the
-- product that owns it. Views that read the old table read it afresh.
DROP TABLE IF EXISTS {db}.dataset_fields;
DROP TABLE IF EXISTS {db}.product_dependencies;
DROP TABLE IF EXISTS {db}.datasets;

CREATE VIEW IF NOT EXISTS {db}.datasets AS
SELECT dataset_urn, product_urn, domain, platform, description, schema_ref, field_names, field_types,
       field_descriptions, field_classifications, field_pii, event_id, event_time, event_time_ms
FROM {db}.dataset_declarations FINAL
ANY INNER JOIN (SELECT dataset_urn, product_urn FROM {db}.dataset_owners) AS owners USING (dataset_urn, product_urn);

CREATE VIEW IF NOT EXISTS {db}.dataset_fields AS
SELECT dataset_urn, product_urn, domain, field_name, field_type, field_description, field_classification, field_pii
FROM {db}.datasets
ARRAY JOIN field_names AS field_name, field_types AS field_type, field_descriptions AS field_description,
           field_classifications AS field_classification, field_pii AS field_pii;

-- Product-level lineage: a product depends on the products owning the
-- datasets it declares as inputs or that runs read to build its outputs.
CREATE VIEW IF NOT EXISTS {db}.product_dependencies AS
SELECT DISTINCT upstream_product, downstream_product FROM (
  SELECT upstream_product, downstream_product FROM (
    SELECT product_urn AS downstream_product, arrayJoin(input_datasets) AS in_ds FROM {db}.products FINAL
  ) AS declared
  ALL INNER JOIN (SELECT dataset_urn AS in_ds, product_urn AS upstream_product FROM {db}.dataset_owners) AS owners USING in_ds
  UNION ALL
  SELECT upstream_product, downstream_product FROM (
    SELECT out_ds, upstream_product FROM (
      SELECT input_dataset AS in_ds, output_dataset AS out_ds FROM {db}.lineage_edges FINAL
    ) AS edges
    ALL INNER JOIN (SELECT dataset_urn AS in_ds, product_urn AS upstream_product FROM {db}.dataset_owners) AS input_owners USING in_ds
  ) AS upstreams
  ALL INNER JOIN (SELECT dataset_urn AS out_ds, product_urn AS downstream_product FROM {db}.dataset_owners) AS output_owners USING out_ds
) AS dependencies
WHERE upstream_product != downstream_product;
