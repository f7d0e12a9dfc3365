"""Python reference producers for meshpulse's wire format (code nobody at
meshpulse wrote: fastavro, Apache Avro's Python package, Confluent's client
and serializer). The interop tests run it with the virtualenv of
scripts/install-interop.

  avro_producer.py canonical SCHEMA.avsc...
      prints "<file> <fingerprint hex> <canonical form>" as fastavro computes
      them, and checks Apache Avro's Python package parses the schema
  avro_producer.py single BROKERS TOPIC KEY SCHEMA.avsc DATUMS.json
      encodes each Avro-JSON datum as fastavro does, framed in single-object
      encoding (C3 01, CRC-64-AVRO fingerprint, body), and produces it
  avro_producer.py confluent BROKERS TOPIC KEY SCHEMA.avsc DATUMS.json REGISTRY
      serializes each datum with Confluent's AvroSerializer (registering the
      schema under TOPIC-value) and produces it
"""
import io
import json
import sys

import avro.schema
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro import json_reader, parse_schema, schemaless_writer
from fastavro.schema import fingerprint, to_parsing_canonical_form


def load(path):
    with open(path) as f:
        text = f.read()
    return text, parse_schema(json.loads(text))


def datums(schema, path):
    with open(path) as f:
        return list(json_reader(f, schema))


def produce(brokers, topic, key, values):
    p = Producer({"bootstrap.servers": brokers, "enable.idempotence": True})
    errors = []

    def done(err, _msg):
        if err is not None:
            errors.append(err)

    for v in values:
        p.produce(topic, key=key.encode(), value=v, on_delivery=done)
    left = p.flush(30)
    if left or errors:
        sys.exit(f"produce to {topic}: {left} not delivered, errors {errors}")
    print(f"produced {len(values)} to {topic}")


def main(argv):
    mode = argv[1]
    if mode == "canonical":
        for path in argv[2:]:
            text, schema = load(path)
            avro.schema.parse(text)  # the Apache implementation accepts it too
            # fastavro gives the fingerprint as its 8 little-endian bytes in
            # hex (the wire order); print it as the 64-bit number.
            wire = bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))
            print(path, "%016x" % int.from_bytes(wire, "little"), to_parsing_canonical_form(schema))
        return
    brokers, topic, key, schema_path, datum_path = argv[2:7]
    text, schema = load(schema_path)
    values = []
    if mode == "single":
        wire = bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))
        for d in datums(schema, datum_path):
            buf = io.BytesIO()
            buf.write(b"\xc3\x01" + wire)
            schemaless_writer(buf, schema, d)
            values.append(buf.getvalue())
    elif mode == "confluent":
        registry = SchemaRegistryClient({"url": argv[7]})
        ser = AvroSerializer(registry, text)
        ctx = SerializationContext(topic, MessageField.VALUE)
        values = [ser(d, ctx) for d in datums(schema, datum_path)]
    else:
        sys.exit(f"unknown mode {mode}")
    produce(brokers, topic, key, values)


if __name__ == "__main__":
    main(sys.argv)
