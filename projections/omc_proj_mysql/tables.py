"""The read model's tables as the projector writes them: columns in DDL order, primary key,
and how a row already there is updated (`sql/V001__read_model.sql` is the DDL; a unit test
keeps the two in step).

    FOLD    rows folded from events: loaded before a batch, changed in memory by the `apply`
            functions, written back once; an older write never overwrites a newer one
            (`IF(VALUES(guard) >= guard, …)`, guard = the aggregate's sequence or version)
    MERGE   a value already stored is kept unless the new row has one (`COALESCE`)
    INSERT  append-only: the first row for a key stays (duplicates change nothing)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Mode(Enum):
    FOLD = "fold"
    MERGE = "merge"
    INSERT = "insert"


@dataclass(frozen=True, eq=False)  # hashed by identity: a dict key in every batch
class Table:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    mode: Mode
    guard: str | None = None

    def key_of(self, row: dict) -> tuple:
        """The row's primary key values, as a tuple."""
        return tuple(map(row.__getitem__, self.key))

    def __post_init__(self) -> None:
        missing = [c for c in (*self.key, *([self.guard] if self.guard else [])) if c not in
                   self.columns]
        if missing:
            raise ValueError(f"{self.name}: unknown columns {missing}")

    @property
    def insert_prefix(self) -> str:
        cols = ", ".join(f"`{c}`" for c in self.columns)
        return f"INSERT INTO `{self.name}` ({cols}) VALUES "  # noqa: S608 - our identifiers

    @property
    def on_duplicate(self) -> str:
        values = [c for c in self.columns if c not in self.key and c != self.guard]
        if self.mode is Mode.INSERT:
            first = self.key[0]
            return f"`{first}` = `{first}`"
        if self.mode is Mode.MERGE:
            return ", ".join(f"`{c}` = COALESCE(VALUES(`{c}`), `{c}`)" for c in values)
        # MySQL assigns left to right and later expressions see earlier results: the guard
        # column is compared in every assignment and updated last.
        g = self.guard
        sets = [f"`{c}` = IF(VALUES(`{g}`) >= `{g}`, VALUES(`{c}`), `{c}`)" for c in values]
        sets.append(f"`{g}` = GREATEST(`{g}`, VALUES(`{g}`))")
        return ", ".join(sets)


def _t(name: str, columns: str, key: str, mode: Mode, guard: str | None = None) -> Table:
    return Table(name, tuple(columns.split()), tuple(key.split()), mode, guard)


OFFSETS = _t("projection_offsets", "projection topic partition next_offset updated_at",
             "projection topic partition", Mode.FOLD, "next_offset")

TASKS = _t("tasks", """tenant task_id agent_id status instruction chain_id submitted_at
           updated_at last_sequence last_event_type last_hash pending_action_id result failure
           tx_hashes""", "tenant task_id", Mode.FOLD, "last_sequence")
TASK_EVENTS = _t("task_events", """tenant task_id sequence event_id event_type occurred_at actor
                 correlation_id causation_id prev_hash hash topic partition offset payload""",
                 "tenant task_id sequence event_id", Mode.INSERT)
AGENTS = _t("agents", """tenant agent_id name description signer_address model parameters_json
            status policy_version requested_policy registered_at updated_at last_sequence""",
            "tenant agent_id", Mode.FOLD, "last_sequence")
POLICIES = _t("policies", "tenant agent_id version policy set_at event_id last_sequence",
              "tenant agent_id", Mode.FOLD, "last_sequence")
POLICY_HISTORY = _t("policy_history", "tenant agent_id version policy set_at event_id",
                    "tenant agent_id version", Mode.INSERT)
BUDGETS = _t("budgets", """tenant action_id agent_id task_id status amount_wei window_start
             window_end reserved_total_wei budget_wei policy_version release_reason reserved_at
             updated_at last_sequence""", "tenant action_id", Mode.FOLD, "last_sequence")
TRANSACTIONS = _t("transactions", """tenant request_id task_id action_id purpose chain_id sender
                  to value_wei nonce tx_hash status block_number block_hash confirmations
                  gas_used effective_gas_price_wei failure_code failure_detail requested_at
                  updated_at last_sequence account_sequence receipts_sequence""",
                  "tenant request_id", Mode.FOLD, "last_sequence")
TX_HASHES = _t("tx_hashes", "tenant tx_hash request_id nonce signed_sequence replaced_by",
               "tenant tx_hash", Mode.MERGE)
RECEIPTS = _t("receipts", """tenant tx_hash request_id block_number block_hash transaction_index
              gas_used effective_gas_price_wei status_ok contract_address confirmations
              canonical included_at updated_at last_sequence""", "tenant tx_hash", Mode.FOLD,
              "last_sequence")
ANCHORS = _t("anchors", """tenant stream_id tree_size root status first_offset last_offset
             previous_tree_size previous_root digest signer signature chain_id request_id
             anchor_address tx_hash block_number block_hash signed_at submitted_at confirmed_at
             updated_at last_sequence""", "tenant stream_id tree_size", Mode.FOLD,
             "last_sequence")

ROWS = (TASKS, TASK_EVENTS, AGENTS, POLICIES, POLICY_HISTORY, BUDGETS, TRANSACTIONS, TX_HASHES,
        RECEIPTS, ANCHORS)
"""The tables of rows, in the order a batch writes them."""

ALL = (OFFSETS, *ROWS)
"""Every table of the read model: what a rebuild replaces, all at once."""

BY_NAME = {table.name: table for table in ALL}
