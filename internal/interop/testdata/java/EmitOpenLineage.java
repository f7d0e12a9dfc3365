import io.openlineage.client.OpenLineage;
import io.openlineage.client.OpenLineageClient;
import io.openlineage.client.transports.HttpTransport;
import java.net.URI;
import java.time.ZonedDateTime;
import java.util.List;
import java.util.UUID;

/**
 * Emits a START and a COMPLETE of job NAMESPACE/ledger with the
 * openlineage-java client's HTTP transport, unchanged: the output carries a
 * schema facet and column lineage. Exits 3 with the client's error message
 * when the endpoint refuses an event.
 *
 * <p>usage: EmitOpenLineage URL API_KEY NAMESPACE
 */
public class EmitOpenLineage {
  public static void main(String[] args) throws Exception {
    String url = args[0], key = args[1], namespace = args[2];
    OpenLineage ol = new OpenLineage(URI.create("https://github.com/meshpulse/meshpulse/internal/interop/java"));
    HttpTransport transport = HttpTransport.builder().uri(url).apiKey(key).build();
    OpenLineageClient client = OpenLineageClient.builder().transport(transport).build();

    OpenLineage.ColumnLineageDatasetFacetFields columns = ol.newColumnLineageDatasetFacetFieldsBuilder()
        .put("amount", ol.newColumnLineageDatasetFacetFieldsAdditional(
            List.of(ol.newInputField("postgres://ledger-db:5432", "finance.public.journal", "total",
                List.of(ol.newInputFieldTransformations("DIRECT", "AGGREGATION", "sum", false)))),
            null, null))
        .build();
    OpenLineage.OutputDataset ledger = ol.newOutputDatasetBuilder()
        .namespace("postgres://ledger-db:5432").name("finance.public.ledger")
        .facets(ol.newDatasetFacetsBuilder()
            .schema(ol.newSchemaDatasetFacet(List.of(
                ol.newSchemaDatasetFacetFields("entry_id", "BIGINT", "the entry's key", 1L, null),
                ol.newSchemaDatasetFacetFields("amount", "DECIMAL", null, 2L, null))))
            .columnLineage(ol.newColumnLineageDatasetFacet(columns, null))
            .build())
        .build();
    OpenLineage.InputDataset journal = ol.newInputDatasetBuilder()
        .namespace("postgres://ledger-db:5432").name("finance.public.journal").build();
    UUID run = UUID.randomUUID();
    OpenLineage.Job job = ol.newJobBuilder().namespace(namespace).name("ledger").build();
    try {
      for (OpenLineage.RunEvent.EventType type : List.of(OpenLineage.RunEvent.EventType.START, OpenLineage.RunEvent.EventType.COMPLETE)) {
        client.emit(ol.newRunEventBuilder()
            .eventType(type)
            .eventTime(ZonedDateTime.now())
            .run(ol.newRunBuilder().runId(run).build())
            .job(job)
            .inputs(List.of(journal))
            .outputs(List.of(ledger))
            .build());
        System.out.println(type + " " + run);
      }
    } catch (Exception e) {
      System.out.println("refused: " + e.getMessage());
      System.exit(3);
    } finally {
      client.close();
    }
  }
}
