"""Emits a fixed scenario of OpenLineage events with the openlineage-python
client, over its HTTP transport (gzip, API key) or its Kafka transport.

usage: openlineage_producer.py http URL API_KEY NAMESPACE
       openlineage_producer.py kafka BROKERS TOPIC NAMESPACE

The scenario, for job NAMESPACE/load_orders writing s3://lake/<NAMESPACE>/orders
from postgres://db:5432 <NAMESPACE>.public.raw_orders:
  run 1: START, RUNNING, COMPLETE (schema, columnLineage, outputStatistics,
         ownership, documentation, symlinks, dataQualityAssertions on the input,
         a custom run facet, parent run)
  run 2: START, FAIL (errorMessage)
  run 3: START, ABORT
  run 4: OTHER
  a DatasetEvent documenting the output, a JobEvent declaring static lineage.
Prints one line per event: "<eventType or kind> <runId>".
"""

import sys
import uuid
from datetime import datetime, timedelta, timezone

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import (
    DatasetEvent,
    InputDataset,
    Job,
    JobEvent,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    documentation_dataset,
    error_message_run,
    output_statistics_output_dataset,
    ownership_dataset,
    parent_run,
    schema_dataset,
    symlinks_dataset,
)
from openlineage.client.facet_v2 import RunFacet

PRODUCER = "https://github.com/meshpulse/meshpulse/internal/interop"


@attr.define
class AcmeCostRunFacet(RunFacet):
    """A custom facet: the spec does not know it, meshpulse keeps it raw."""

    dollars: float = attr.field(default=0.0)

    @staticmethod
    def _get_schema() -> str:
        return "https://acme.example/schemas/AcmeCostRunFacet.json"


def client(kind, where, secret):
    if kind == "http":
        from openlineage.client.transport.http import ApiKeyTokenProvider, HttpCompression, HttpConfig, HttpTransport

        cfg = HttpConfig(
            url=where,
            auth=ApiKeyTokenProvider({"apiKey": secret}),
            compression=HttpCompression.GZIP,
            timeout=10.0,
        )
        return OpenLineageClient(transport=HttpTransport(cfg))
    from openlineage.client.transport.kafka import KafkaConfig, KafkaTransport

    cfg = KafkaConfig(config={"bootstrap.servers": where, "acks": "all"}, topic=secret, flush=True)
    return OpenLineageClient(transport=KafkaTransport(cfg))


def main():
    kind, where, secret, namespace = sys.argv[1:5]
    ol = client(kind, where, secret)
    t0 = datetime.now(timezone.utc) - timedelta(minutes=30)

    def at(minutes):
        return (t0 + timedelta(minutes=minutes)).isoformat()

    job = Job(namespace=namespace, name="load_orders")
    raw = InputDataset(
        namespace="postgres://db:5432",
        name=namespace + ".public.raw_orders",
        inputFacets={
            "dataQualityAssertions": data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                assertions=[
                    data_quality_assertions_dataset.Assertion(assertion="not_null", success=True, column="order_id"),
                    data_quality_assertions_dataset.Assertion(
                        assertion="unique", success=False, column="order_id", severity="error", name="unique_order_id"
                    ),
                ]
            )
        },
    )
    out_name = namespace + "/orders"
    orders = OutputDataset(
        namespace="s3://lake",
        name=out_name,
        facets={
            "schema": schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name="order_id", type="BIGINT", description="the order's key"),
                    schema_dataset.SchemaDatasetFacetFields(
                        name="customer",
                        type="STRUCT",
                        fields=[schema_dataset.SchemaDatasetFacetFields(name="email", type="VARCHAR")],
                    ),
                ]
            ),
            "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet(
                fields={
                    "order_id": column_lineage_dataset.Fields(
                        inputFields=[
                            column_lineage_dataset.InputField(
                                namespace="postgres://db:5432",
                                name=namespace + ".public.raw_orders",
                                field="id",
                                transformations=[column_lineage_dataset.Transformation(type="DIRECT", subtype="IDENTITY")],
                            )
                        ]
                    )
                }
            ),
            "ownership": ownership_dataset.OwnershipDatasetFacet(
                owners=[ownership_dataset.Owner(name="team:orders", type="MAINTAINER")]
            ),
            "documentation": documentation_dataset.DocumentationDatasetFacet(description="one row per order"),
            "symlinks": symlinks_dataset.SymlinksDatasetFacet(
                identifiers=[symlinks_dataset.Identifier(namespace="hive://metastore:9083", name="lake.orders", type="TABLE")]
            ),
        },
        outputFacets={
            "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=1200, size=65536, fileCount=2
            )
        },
    )
    parent = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=str(uuid.uuid4())), job=parent_run.Job(namespace="airflow", name="nightly")
    )
    sent = []

    def emit(ev, label, run_id=""):
        ol.emit(ev)
        sent.append(f"{label} {run_id}")

    run1 = str(uuid.uuid4())
    emit(RunEvent(eventType=RunState.START, eventTime=at(0), run=Run(runId=run1, facets={"parent": parent}),
                  job=job, inputs=[InputDataset(namespace=raw.namespace, name=raw.name)],
                  outputs=[OutputDataset(namespace=orders.namespace, name=orders.name)], producer=PRODUCER), "START", run1)
    emit(RunEvent(eventType=RunState.RUNNING, eventTime=at(1), run=Run(runId=run1), job=job, producer=PRODUCER),
         "RUNNING", run1)
    emit(RunEvent(eventType=RunState.COMPLETE, eventTime=at(2),
                  run=Run(runId=run1, facets={"parent": parent, "acmeCost": AcmeCostRunFacet(dollars=4.25)}),
                  job=job, inputs=[raw], outputs=[orders], producer=PRODUCER), "COMPLETE", run1)
    run2 = str(uuid.uuid4())
    emit(RunEvent(eventType=RunState.START, eventTime=at(3), run=Run(runId=run2), job=job, producer=PRODUCER), "START", run2)
    emit(RunEvent(eventType=RunState.FAIL, eventTime=at(4),
                  run=Run(runId=run2, facets={"errorMessage": error_message_run.ErrorMessageRunFacet(
                      message="relation raw_orders is locked", programmingLanguage="SQL")}),
                  job=job, outputs=[OutputDataset(namespace=orders.namespace, name=orders.name)], producer=PRODUCER),
         "FAIL", run2)
    run3 = str(uuid.uuid4())
    emit(RunEvent(eventType=RunState.START, eventTime=at(5), run=Run(runId=run3), job=job, producer=PRODUCER), "START", run3)
    emit(RunEvent(eventType=RunState.ABORT, eventTime=at(6), run=Run(runId=run3), job=job, producer=PRODUCER), "ABORT", run3)
    run4 = str(uuid.uuid4())
    emit(RunEvent(eventType=RunState.OTHER, eventTime=at(7), run=Run(runId=run4), job=job, producer=PRODUCER), "OTHER", run4)
    emit(DatasetEvent(eventTime=at(8), dataset=StaticDataset(namespace="s3://lake", name=out_name, facets={
        "documentation": documentation_dataset.DocumentationDatasetFacet(description="orders, documented statically")}),
        producer=PRODUCER), "DatasetEvent")
    emit(JobEvent(eventTime=at(9), job=Job(namespace=namespace, name="export_orders"),
                  inputs=[InputDataset(namespace="s3://lake", name=out_name)],
                  outputs=[OutputDataset(namespace="s3://lake", name=namespace + "/orders_export")], producer=PRODUCER),
         "JobEvent")
    ol.close()
    for line in sent:
        print(line)


if __name__ == "__main__":
    main()
