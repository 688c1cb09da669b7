"""The fast envelope scan reads exactly what omc_events.chain reads, for every record of the
contract, and refuses what is not an envelope."""

from __future__ import annotations

import random

import pytest

from omc_events.avro import Schemas
from omc_events.chain import canonical_bytes, seal, seal_command
from omc_events.envelope import ChainHead
from omc_events.records import RECORDS
from omc_proofs.fastmeta import scan
from tests.support.samples import sample

SCHEMAS = Schemas()
NAMES = sorted(n for n, cls in RECORDS.items()
               if "meta" in getattr(cls, "__dataclass_fields__", {}))


@pytest.mark.parametrize("name", NAMES)
def test_scan_equals_the_chain_reader(name):
    record = sample(SCHEMAS.set, name, aggregate_id="a-1")
    for sealed in (seal(SCHEMAS, record, ChainHead(4, "ab" * 32))[0],
                   seal_command(SCHEMAS, record)):
        body = SCHEMAS.encode(sealed)
        meta, canonical = canonical_bytes(body)
        found = scan(body)
        assert (found.hash, found.prev_hash, found.sequence, found.aggregate_type,
                found.aggregate_id) == (meta["hash"], meta["prev_hash"], meta["sequence"],
                                        meta["aggregate_type"], meta["aggregate_id"])
        assert body[:found.hash_start] + b"\x00" + body[found.end:] == canonical


def test_garbage_is_refused_not_misread():
    rng = random.Random(1)
    for _ in range(300):
        data = rng.randbytes(rng.randint(0, 80))
        try:
            found = scan(data)
        except ValueError:
            continue
        assert found.end <= len(data)
