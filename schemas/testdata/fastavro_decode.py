#!/usr/bin/env python3
"""Decode Confluent wire-format Avro payloads with fastavro, for the
cross-implementation test of the Go codec (schemas/fastavro_test.go).

Reads JSON lines on stdin: {"name": ..., "schema": "<writer schema JSON>",
"payload": "<base64 wire-format bytes>"}. Writes one JSON line per input:
{"name": ..., "schema_id": <id from the header>, "value": <decoded value>}
with dates as {"$date": "YYYY-MM-DD"}, timestamps as {"$ts": <micros since
the epoch>}, uuids as {"$uuid": "..."} and bytes as {"$bytes": "<hex>"}, or
{"name": ..., "error": "..."} when a payload does not decode.
"""

import base64
import datetime
import io
import json
import struct
import sys
import uuid

try:
    import fastavro
except ImportError:
    sys.stderr.write("fastavro is missing: python3 -m pip install fastavro\n")
    sys.exit(3)

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def tagged(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            raise TypeError("naive datetime %r" % (v,))
        return {"$ts": (v - EPOCH) // datetime.timedelta(microseconds=1)}
    if isinstance(v, datetime.date):
        return {"$date": v.isoformat()}
    if isinstance(v, uuid.UUID):
        return {"$uuid": str(v)}
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": bytes(v).hex()}
    if isinstance(v, dict):
        return {k: tagged(x) for k, x in v.items()}
    if isinstance(v, list):
        return [tagged(x) for x in v]
    raise TypeError("unexpected decoded type %s" % type(v).__name__)


def decode(item):
    data = base64.b64decode(item["payload"])
    if len(data) < 5 or data[0] != 0:
        raise ValueError("not Confluent wire format")
    (schema_id,) = struct.unpack(">I", data[1:5])
    schema = fastavro.parse_schema(json.loads(item["schema"]))
    body = io.BytesIO(data[5:])
    value = fastavro.schemaless_reader(body, schema, None)
    if body.tell() != len(data) - 5:
        raise ValueError("%d bytes left after the record" % (len(data) - 5 - body.tell()))
    return {"name": item["name"], "schema_id": schema_id, "value": tagged(value)}


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        item = json.loads(line)
        try:
            out = decode(item)
        except Exception as exc:  # reported per record, compared by the Go test
            out = {"name": item.get("name"), "error": "%s: %s" % (type(exc).__name__, exc)}
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
