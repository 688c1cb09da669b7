"""The pure domain of OpenMCP-Chain: decide / evolve and the policy engine.

Imports only `omc_events` and the standard library; no clock, no random, no I/O. Domain
functions return records whose `meta` is `draft.DRAFT`; the service shell fills the envelope.

    draft     DRAFT, is_draft(record)
    policy    evaluate(policy, action, facts) -> Judgement; decode_erc20(data)
    budget    Reservation, used(reservations, token, now, window_seconds)
    agent     AgentState, evolve(state, event), decide(state, command, now)
"""
