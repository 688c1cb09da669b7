"""Avro compatibility by the specification's schema resolution rules (omc_events.compat)."""

from __future__ import annotations

import json

import pytest

from omc_events.compat import LEVELS, SchemaParseError, check, check_backward, check_level


def record(name: str, *fields: dict, namespace: str = "omc.test", **extra) -> dict:
    return {"type": "record", "name": name, "namespace": namespace, "fields": list(fields),
            **extra}


def f(name: str, type_, **extra) -> dict:
    return {"name": name, "type": type_, **extra}


def enum(name: str, *symbols: str, **extra) -> dict:
    return {"type": "enum", "name": name, "symbols": list(symbols), **extra}


# -- primitives and promotions ---------------------------------------------------------------

PRIMITIVE_NAMES = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"]
READABLE = {  # (reader, writer) pairs that resolve besides identity
    ("long", "int"), ("float", "int"), ("double", "int"),
    ("float", "long"), ("double", "long"),
    ("double", "float"),
    ("bytes", "string"), ("string", "bytes"),
}


@pytest.mark.parametrize("reader", PRIMITIVE_NAMES)
@pytest.mark.parametrize("writer", PRIMITIVE_NAMES)
def test_primitives_resolve_only_to_themselves_and_their_promotions(reader, writer) -> None:
    problems = check(json.dumps(reader), json.dumps(writer))

    if reader == writer or (reader, writer) in READABLE:
        assert problems == []
    else:
        assert problems == [f"(root): reader type '{reader}' cannot read writer type '{writer}'"]


def test_promotions_go_one_way_only() -> None:
    assert check("long", "int") == []
    assert check("int", "long") != []
    assert check("double", "float") == []
    assert check("float", "double") != []


def test_bare_primitive_names_and_json_text_and_parsed_json_are_all_accepted() -> None:
    assert check("string", '"string"') == []
    assert check({"type": "string"}, "string") == []
    assert check(json.dumps(record("R", f("a", "int"))), record("R", f("a", "int"))) == []


def test_the_message_names_the_record_and_field_as_the_brief_shows() -> None:
    reader = record("TaskSubmitted", f("instruction", "int"), namespace="omc.task")
    writer = record("TaskSubmitted", f("instruction", "string"), namespace="omc.task")

    assert check(reader, writer) == [
        "omc.task.TaskSubmitted.instruction: reader type 'int' cannot read writer type 'string'"
    ]


def test_logical_types_do_not_change_compatibility() -> None:
    timestamp = {"type": "long", "logicalType": "timestamp-micros"}
    uuid = {"type": "string", "logicalType": "uuid"}

    assert check(record("R", f("at", timestamp)), record("R", f("at", "long"))) == []
    assert check(record("R", f("at", "long")), record("R", f("at", timestamp))) == []
    assert check(record("R", f("id", "string")), record("R", f("id", uuid))) == []
    assert check(record("R", f("at", "double")), record("R", f("at", timestamp))) == []
    assert check(record("R", f("id", "int")), record("R", f("id", uuid))) == [
        "omc.test.R.id: reader type 'int' cannot read writer type 'string'"
    ]


def test_decimal_on_bytes_reads_like_bytes() -> None:
    decimal = {"type": "bytes", "logicalType": "decimal", "precision": 78, "scale": 0}

    assert check(record("R", f("wei", decimal)), record("R", f("wei", "bytes"))) == []
    assert check(record("R", f("wei", "string")), record("R", f("wei", decimal))) == []


# -- records ---------------------------------------------------------------------------------


def test_a_field_added_with_a_default_is_compatible_both_ways() -> None:
    old = record("R", f("a", "int"))
    new = record("R", f("a", "int"), f("b", "string", default=""))

    assert check(new, old) == []  # new reads old: b takes its default
    assert check(old, new) == []  # old reads new: b is skipped


def test_a_field_added_without_a_default_breaks_backward_but_not_forward() -> None:
    old = record("R", f("a", "int"))
    new = record("R", f("a", "int"), f("b", "string"))

    assert check(new, old) == [
        "omc.test.R.b: reader field 'b' is missing from the writer and has no default"
    ]
    assert check(old, new) == []


def test_a_field_removed_breaks_forward_unless_it_had_a_default() -> None:
    with_default = record("R", f("a", "int"), f("b", "string", default="x"))
    without_default = record("R", f("a", "int"), f("b", "string"))
    removed = record("R", f("a", "int"))

    assert check(removed, with_default) == []
    assert check(with_default, removed) == []
    assert check(removed, without_default) == []
    assert check(without_default, removed) == [
        "omc.test.R.b: reader field 'b' is missing from the writer and has no default"
    ]


def test_a_null_default_counts_as_a_default() -> None:
    old = record("R", f("a", "int"))
    new = record("R", f("a", "int"), f("note", ["null", "string"], default=None))

    assert check(new, old) == []


def test_fields_match_by_name_not_position() -> None:
    reader = record("R", f("b", "string"), f("a", "int"))
    writer = record("R", f("a", "int"), f("b", "string"))

    assert check(reader, writer) == []


def test_a_renamed_field_is_matched_through_the_reader_fields_aliases() -> None:
    old = record("R", f("amount", "long"))
    renamed = record("R", f("value", "long", aliases=["amount"]))
    renamed_badly = record("R", f("value", "string", aliases=["amount"]))

    assert check(renamed, old) == []
    assert check(renamed_badly, old) == [
        "omc.test.R.value: reader type 'string' cannot read writer type 'long'"
    ]
    assert check(old, renamed) == [  # writer aliases do not help the reader
        "omc.test.R.amount: reader field 'amount' is missing from the writer and has no default"
    ]


def test_every_problem_of_a_record_is_listed() -> None:
    reader = record("R", f("a", "int"), f("b", "boolean"), f("c", "string"))
    writer = record("R", f("a", "string"), f("b", "double"))

    assert check(reader, writer) == [
        "omc.test.R.a: reader type 'int' cannot read writer type 'string'",
        "omc.test.R.b: reader type 'boolean' cannot read writer type 'double'",
        "omc.test.R.c: reader field 'c' is missing from the writer and has no default",
    ]


def test_nested_records_report_the_full_field_path() -> None:
    inner_old = record("Meta", f("id", "string"), f("seq", "long"))
    inner_new = record("Meta", f("id", "string"), f("seq", "int"), f("tenant", "string"))

    problems = check(record("Event", f("meta", inner_new)), record("Event", f("meta", inner_old)))

    assert problems == [
        "omc.test.Event.meta.seq: reader type 'int' cannot read writer type 'long'",
        "omc.test.Event.meta.tenant: reader field 'tenant' is missing from the writer and has "
        "no default",
    ]
    assert check(record("Event", f("meta", inner_old)), record("Event", f("meta", inner_new))) == []


def test_records_match_by_unqualified_name() -> None:
    reader = record("R", f("a", "int"), namespace="omc.one")
    writer = record("R", f("a", "int"), namespace="omc.two")

    assert check(reader, writer) == []


def test_records_with_different_names_do_not_match_without_an_alias() -> None:
    reader = record("New", f("a", "int"))
    writer = record("Old", f("a", "int"))

    assert check(reader, writer) == [
        "omc.test.New: reader record 'omc.test.New' cannot read writer record 'omc.test.Old': "
        "the names differ and no reader alias names the writer's"
    ]
    assert check(record("New", f("a", "int"), aliases=["Old"]), writer) == []
    assert check(record("New", f("a", "int"), aliases=["omc.test.Old"]), writer) == []
    assert check(writer, record("New", f("a", "int"), aliases=["Old"])) != []


def test_a_record_cannot_read_a_primitive_or_the_reverse() -> None:
    assert check(record("R", f("a", "int")), "int") == [
        "omc.test.R: reader type 'omc.test.R' cannot read writer type 'int'"
    ]
    assert check("int", record("R", f("a", "int"))) == [
        "omc.test.R: reader type 'int' cannot read writer type 'omc.test.R'"
    ]


def test_an_error_type_is_read_like_a_record() -> None:
    error = {"type": "error", "name": "Oops", "fields": [f("why", "string")]}
    as_record = {"type": "record", "name": "Oops", "fields": [f("why", "string")]}

    assert check(as_record, error) == []
    assert check(error, as_record) == []


# -- enums -----------------------------------------------------------------------------------


def test_an_enum_reads_writer_symbols_it_knows() -> None:
    old = enum("Kind", "A", "B")
    more = enum("Kind", "A", "B", "C")

    assert check(more, old) == []
    assert check(old, more) == [
        "Kind: reader enum 'Kind' has no symbol 'C' of the writer's, and no default"
    ]


def test_an_enum_default_absorbs_unknown_writer_symbols() -> None:
    reader = enum("Kind", "A", "B", "UNKNOWN", default="UNKNOWN")
    writer = enum("Kind", "A", "B", "C", "D")

    assert check(reader, writer) == []


def test_every_missing_enum_symbol_is_named_with_the_field_path() -> None:
    reader = record("R", f("kind", enum("Kind", "A")))
    writer = record("R", f("kind", enum("Kind", "A", "B", "C")))

    assert check(reader, writer) == [
        "omc.test.R.kind: reader enum 'omc.test.Kind' has no symbol 'B', 'C' of the writer's, "
        "and no default"
    ]


def test_enum_symbol_order_does_not_matter() -> None:
    assert check(enum("Kind", "B", "A"), enum("Kind", "A", "B")) == []


def test_enums_need_matching_names() -> None:
    assert check(enum("One", "A"), enum("Two", "A")) != []
    assert check(enum("One", "A", aliases=["Two"]), enum("Two", "A")) == []


# -- fixed -----------------------------------------------------------------------------------


def test_fixed_needs_the_same_name_and_size() -> None:
    hash32 = {"type": "fixed", "name": "Hash", "size": 32}

    assert check(hash32, {"type": "fixed", "name": "Hash", "size": 32}) == []
    assert check(hash32, {"type": "fixed", "name": "Hash", "size": 20}) == [
        "Hash: reader fixed 'Hash' has size 32, writer fixed 'Hash' has size 20"
    ]
    assert check(hash32, {"type": "fixed", "name": "Digest", "size": 32}) != []
    assert check({"type": "fixed", "name": "Hash", "size": 32, "aliases": ["Digest"]},
                 {"type": "fixed", "name": "Digest", "size": 32}) == []


def test_fixed_and_bytes_do_not_read_each_other() -> None:
    hash32 = {"type": "fixed", "name": "Hash", "size": 32}

    assert check("bytes", hash32) != []
    assert check(hash32, "bytes") != []


# -- arrays and maps -------------------------------------------------------------------------


def test_arrays_resolve_by_items() -> None:
    assert check({"type": "array", "items": "long"}, {"type": "array", "items": "int"}) == []
    assert check(record("R", f("xs", {"type": "array", "items": "int"})),
                 record("R", f("xs", {"type": "array", "items": "long"}))) == [
        "omc.test.R.xs[]: reader type 'int' cannot read writer type 'long'"
    ]


def test_maps_resolve_by_values() -> None:
    assert check({"type": "map", "values": "bytes"}, {"type": "map", "values": "string"}) == []
    assert check(record("R", f("m", {"type": "map", "values": "int"})),
                 record("R", f("m", {"type": "map", "values": "boolean"}))) == [
        "omc.test.R.m{}: reader type 'int' cannot read writer type 'boolean'"
    ]


def test_arrays_and_maps_do_not_read_each_other() -> None:
    array = {"type": "array", "items": "string"}
    mapping = {"type": "map", "values": "string"}

    assert check(array, mapping) == [
        "(root): reader type 'array<string>' cannot read writer type 'map<string>'"
    ]
    assert check(mapping, array) != []


def test_records_inside_arrays_are_compared_field_by_field() -> None:
    old = record("R", f("items", {"type": "array", "items": record("Item", f("n", "int"))}))
    new = record("R", f("items", {"type": "array",
                                  "items": record("Item", f("n", "int"), f("tag", "string"))}))

    assert check(new, old) == [
        "omc.test.R.items[].tag: reader field 'tag' is missing from the writer and has no default"
    ]


# -- unions ----------------------------------------------------------------------------------


def test_a_writer_value_is_read_by_a_matching_reader_union_branch() -> None:
    assert check(["null", "string"], "string") == []
    assert check(["null", "long"], "int") == []  # via promotion
    assert check(["null", "string"], "int") == [
        "(root): no branch of reader type 'union[null, string]' can read writer type 'int'"
    ]


def test_every_writer_union_branch_must_be_readable() -> None:
    assert check(["null", "string", "int"], ["null", "string"]) == []
    assert check(["null", "string"], ["null", "string", "int"]) == [
        "(root): no branch of reader type 'union[null, string]' can read writer type 'int'"
    ]
    assert check(["null", "long"], ["int", "null"]) == []


def test_a_writer_union_is_read_by_a_non_union_only_if_every_branch_resolves() -> None:
    assert check("long", ["int", "long"]) == []
    assert check("string", ["null", "string"]) == [
        "(root): reader type 'string' cannot read writer type 'null'"
    ]


def test_making_a_field_optional_is_backward_but_not_forward_compatible() -> None:
    old = record("R", f("note", "string"))
    new = record("R", f("note", ["null", "string"], default=None))

    assert check(new, old) == []
    assert check(old, new) == [
        "omc.test.R.note: reader type 'string' cannot read writer type 'null'"
    ]


def test_a_record_in_a_reader_union_is_compared_to_the_writer_record_by_name() -> None:
    old = record("Outer", f("x", ["null", record("Inner", f("a", "int"))], default=None))
    new = record("Outer", f("x", ["null", record("Inner", f("a", "int"), f("b", "int"))],
                            default=None))

    assert check(new, old) == [
        "omc.test.Outer.x.b: reader field 'b' is missing from the writer and has no default"
    ]
    assert check(old, new) == []


def test_a_union_of_records_resolves_each_by_name() -> None:
    a = record("A", f("n", "int"))
    b = record("B", f("s", "string"))
    a_wider = record("A", f("n", "long"))

    assert check([a_wider, b], [a, b]) == []
    assert check([b], [a, b]) == [
        "(root): no branch of reader type 'union[omc.test.B]' can read writer type 'omc.test.A'"
    ]


# -- named types referred to by name, recursion ----------------------------------------------


def test_named_types_referred_to_by_name_are_followed() -> None:
    money = {"type": "fixed", "name": "Money", "size": 32}
    old = record("Tx", f("value", money), f("fee", "Money"))
    new = record("Tx", f("value", {**money, "size": 16}), f("fee", "Money"))

    assert check(new, old) == [
        "omc.test.Tx.value: reader fixed 'omc.test.Money' has size 16, "
        "writer fixed 'omc.test.Money' has size 32",
        "omc.test.Tx.fee: reader fixed 'omc.test.Money' has size 16, "
        "writer fixed 'omc.test.Money' has size 32",
    ]


def test_references_resolve_through_namespaces() -> None:
    kind = {"type": "enum", "name": "Kind", "namespace": "omc.common", "symbols": ["A", "B"]}
    old = record("R", f("k", kind), f("again", "omc.common.Kind"))
    new = record("R", f("k", {**kind, "symbols": ["A"]}), f("again", "omc.common.Kind"))

    assert check(old, new) == []
    assert len(check(new, old)) == 2


def test_a_recursive_record_is_checked_without_looping() -> None:
    def node(*extra):
        return record("Node", f("value", "int"), *extra,
                      f("next", ["null", "Node"], default=None))

    assert check(node(), node()) == []
    assert check(node(f("label", "string", default="")), node()) == []
    assert check(node(f("label", "string")), node()) == [
        "omc.test.Node.label: reader field 'label' is missing from the writer and has no default"
    ]


def test_mutually_recursive_records() -> None:
    def tree(leaf_type):
        return record("Tree", f("children", {"type": "array", "items": record(
            "Branch", f("weight", leaf_type), f("sub", ["null", "Tree"], default=None))}))

    assert check(tree("double"), tree("float")) == []
    assert check(tree("float"), tree("double")) == [
        "omc.test.Tree.children[].weight: reader type 'float' cannot read writer type 'double'"
    ]


def test_unknown_and_malformed_schemas_are_refused() -> None:
    with pytest.raises(SchemaParseError, match="unknown type 'Nope'"):
        check(record("R", f("a", "Nope")), "int")
    with pytest.raises(SchemaParseError, match="not JSON"):
        check("{not json", "int")
    with pytest.raises(SchemaParseError, match="without 'fields'"):
        check({"type": "record", "name": "R"}, "int")
    with pytest.raises(SchemaParseError, match="defined twice"):
        check(record("R", f("a", enum("E", "X")), f("b", enum("E", "Y"))), "int")


# -- levels ----------------------------------------------------------------------------------

V1 = record("R", f("a", "int"))
V2 = record("R", f("a", "int"), f("b", "string", default=""))  # adds b with a default
V3 = record("R", f("a", "long"), f("b", "string", default=""))  # widens a
V3_REQUIRED_C = record("R", f("a", "int"), f("b", "string", default=""), f("c", "int"))


def test_levels_are_the_registry_ones() -> None:
    assert set(LEVELS) == {"NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD",
                           "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"}


def test_none_checks_nothing() -> None:
    assert check_level("NONE", "string", [V1, V2]) == []


def test_nothing_previous_is_always_compatible() -> None:
    for level in LEVELS:
        assert check_level(level, V1, []) == []


def test_backward_means_the_new_schema_reads_the_old_data() -> None:
    assert check_level("BACKWARD", V3, [V1, V2]) == []
    assert check_level("BACKWARD", V3_REQUIRED_C, [V1, V2]) == [
        "[new schema reading version 2] omc.test.R.c: reader field 'c' is missing from the "
        "writer and has no default"
    ]


def test_forward_means_the_old_schema_reads_the_new_data() -> None:
    assert check_level("FORWARD", V3_REQUIRED_C, [V1, V2]) == []
    assert check_level("FORWARD", V3, [V1, V2]) == [
        "[version 2 reading new schema] omc.test.R.a: reader type 'int' cannot read writer "
        "type 'long'"
    ]


def test_full_means_both_directions() -> None:
    assert check_level("FULL", V2, [V1]) == []
    assert len(check_level("FULL", V3, [V2])) == 1
    assert len(check_level("FULL", V3_REQUIRED_C, [V2])) == 1


def test_non_transitive_levels_look_only_at_the_latest_version() -> None:
    v1 = record("R", f("a", "int"))
    v2 = record("R", f("a", "int"), f("b", "int", default=0))
    v3 = record("R", f("b", "int", default=0))  # drops a: fine for BACKWARD against v2

    assert check_level("FORWARD", v3, [v1, v2]) == [
        "[version 2 reading new schema] omc.test.R.a: reader field 'a' is missing from the "
        "writer and has no default"
    ]
    v2_default_a = record("R", f("a", "int", default=0), f("b", "int", default=0))
    assert check_level("FORWARD", v3, [v1, v2_default_a]) == []
    assert check_level("FORWARD_TRANSITIVE", v3, [v1, v2_default_a]) == [
        "[version 1 reading new schema] omc.test.R.a: reader field 'a' is missing from the "
        "writer and has no default"
    ]


def test_transitive_backward_checks_every_previous_version() -> None:
    v1 = record("R", f("a", "int"))
    v2 = record("R", f("a", "int"), f("b", "int", default=0))
    v3 = record("R", f("a", "int"), f("b", "int"))  # b loses its default: v2 data still has b

    assert check_level("BACKWARD", v3, [v1, v2]) == []
    assert check_level("BACKWARD_TRANSITIVE", v3, [v1, v2]) == [
        "[new schema reading version 1] omc.test.R.b: reader field 'b' is missing from the "
        "writer and has no default"
    ]
    assert check_backward(v3, [v1, v2]) == check_level("BACKWARD_TRANSITIVE", v3, [v1, v2])
    assert check_backward(v3, [v1, v2], transitive=False) == []


def test_full_transitive_checks_both_directions_against_every_version() -> None:
    v1 = record("R", f("a", "int"))
    v2 = record("R", f("a", "int", default=0), f("b", "int", default=0))
    v3 = record("R", f("b", "int", default=0))

    assert check_level("FULL", v3, [v1, v2]) == []
    assert check_level("FULL_TRANSITIVE", v3, [v1, v2]) == [
        "[version 1 reading new schema] omc.test.R.a: reader field 'a' is missing from the "
        "writer and has no default"
    ]


def test_version_labels_name_the_versions_in_messages() -> None:
    problems = check_level("BACKWARD", V3_REQUIRED_C, [V1, V2], versions=[7, 9])

    assert problems[0].startswith("[new schema reading version 9] ")


def test_levels_are_case_insensitive_and_unknown_ones_refused() -> None:
    assert check_level("backward", V2, [V1]) == []
    with pytest.raises(ValueError, match="unknown compatibility level 'SIDEWAYS'"):
        check_level("SIDEWAYS", V2, [V1])
