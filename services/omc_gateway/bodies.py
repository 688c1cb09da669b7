"""The request bodies of the commands (docs/api.md, "Routes"), field by field.

Limits are the gateway's, chosen so a valid body always fits the contract's records and the
default 64 KiB body limit; amounts are wei strings up to 2**256 - 1; the policy object is
exactly `omc.agent.Policy` (its `token_limits` optional, [] when absent). Approving or rejecting
names the `action_hash` of the action decided on (required).
"""

from __future__ import annotations

from omc_gateway.fields import (
    WORD,
    Address,
    Array,
    ChainId,
    Field,
    HexDigest,
    Integer,
    JsonObject,
    Obj,
    Selector,
    Text,
    Timestamp,
    Uuid,
    Wei,
)

MAX_LIST = 500
TEN_YEARS = 10 * 365 * 86400

TOKEN_LIMIT = Obj({
    "token": Field(Address(), doc="the ERC-20 token contract"),
    "max_amount": Field(Wei(), doc="most token base units one action may move or approve"),
    "budget_amount": Field(Wei(), doc="most token base units within any rolling budget window"),
}, name="TokenLimit", doc="Limits on one ERC-20 token, in its base units, exactly "
                          "omc.agent.TokenLimit.")

POLICY = Obj({
    "version": Field(Integer(1, 2**31 - 1), doc="1 at registration, then the agent's current "
                                               "version + 1"),
    "allowed_chain_ids": Field(Array(ChainId(), max_items=100),
                               doc="EIP-155 ids of the chains the agent may act on"),
    "allowed_contracts": Field(Array(Address(), max_items=MAX_LIST),
                               doc="contracts the agent may read or call"),
    "allowed_selectors": Field(Array(Selector(), max_items=MAX_LIST),
                               doc="4-byte selectors it may call on allowed contracts"),
    "allowed_recipients": Field(Array(Address(), max_items=MAX_LIST),
                                doc="accounts it may send value to"),
    "deny_addresses": Field(Array(Address(), max_items=MAX_LIST),
                            doc="never a target, recipient or spender; deny wins"),
    "max_value_wei": Field(Wei(), doc="most value one action may carry"),
    "budget_wei": Field(Wei(), doc="most value within any rolling budget window"),
    "budget_window_seconds": Field(Integer(1, TEN_YEARS), doc="the budget window"),
    "max_fee_per_gas_wei": Field(Wei(), doc="highest max fee per gas ever offered"),
    "approval_threshold_wei": Field(Wei(), doc="an action above this waits for a human"),
    "max_inferences_per_task": Field(Integer(1, 1000), doc="most model calls per task"),
    "token_limits": Field(Array(TOKEN_LIMIT, max_items=100, unique_by="token"), required=False,
                          doc="per-token limits, one per token; an ERC-20 transfer or approve "
                              "of a token not listed is denied; absent or null: none ([])"),
}, name="Policy", doc="An agent's default-deny policy, exactly omc.agent.Policy.")

SUBMIT_TASK = Obj({
    "agent_id": Field(Uuid(), doc="the agent that is to carry out the task"),
    "instruction": Field(Text(max_length=8000), doc="what to do, in natural language"),
    "chain_id": Field(ChainId(), doc="EIP-155 id of the chain the task acts on"),
    "max_value_wei": Field(Wei(), required=False,
                           doc="most value the whole task may move; only tightens the policy"),
    "deadline": Field(Timestamp(future=True), required=False,
                      doc="RFC 3339 time after which an unfinished task fails"),
    "metadata": Field(JsonObject(max_bytes=8192), required=False,
                      doc="client data kept with the task, never shown to the model"),
}, name="SubmitTask")

CANCEL_TASK = Obj({
    "reason": Field(Text(max_length=2000), doc="why the task is to be stopped"),
}, name="CancelTask")

ACTION_HASH = Field(HexDigest(), doc="the action_hash of the ApprovalRequested being decided: "
                                     "the exact action a human saw; another hash is refused")

APPROVE_ACTION = Obj({
    "action_hash": ACTION_HASH,
    "comment": Field(Text(min_length=0, max_length=2000, words=False), required=False,
                     doc="free text from the approver"),
}, name="ApproveAction")

REJECT_ACTION = Obj({
    "action_hash": ACTION_HASH,
    "reason": Field(Text(max_length=2000), doc="why the action is refused; shown to the model"),
}, name="RejectAction")

REGISTER_AGENT = Obj({
    "agent_id": Field(Uuid(), required=False, doc="the new agent's id; chosen by the gateway "
                                                  "when absent"),
    "name": Field(Text(max_length=100), doc="short display name"),
    "description": Field(Text(max_length=2000), doc="what the agent is for"),
    "signer_address": Field(Address(), doc="the account its transactions are signed with"),
    "model": Field(Text(max_length=200, pattern=f"^{WORD.pattern}+$",
                        pattern_problem="must be a model name without spaces"),
                   doc="the LLM model, as its endpoint names it"),
    "parameters": Field(JsonObject(max_bytes=4096), required=False,
                        doc="model sampling parameters, e.g. {\"temperature\": 0}"),
    "policy": Field(POLICY, doc="the first policy; its version must be 1"),
}, name="RegisterAgent")

SET_POLICY = Obj({
    "policy": Field(POLICY, doc="the new policy; its version must be the current version + 1"),
}, name="SetPolicy")
