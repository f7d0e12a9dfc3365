// Package catalog is meshpulse's read-only web catalog: the mesh (domains,
// products, health and trust, worst first), a product's 360° page (score
// history, components, root causes, the seven characteristics, lineage
// coloured by trust, consumers, checks and runs), a dataset's page (fields,
// column lineage, owner, usage), a search box across all metadata, and
// score changes pushed live to open pages (server-sent events). The pages
// are static files embedded in the binary (web/, with their vendored
// libraries); they read the JSON API under /api/, which scripts may use
// too (docs/catalog.md).
//
// It reads ClickHouse, follows mesh.scores and keeps two things in memory:
// the lineage graph (pkg/lineage) and a full-text index of the mesh's
// metadata (bleve), both refreshed as declarations change. It never writes.
package catalog
