"""The market's EIP-1559 fees, from eth_feeHistory.

    market_fees(rpc) -> Fees(max_fee = 2 * next base fee + tip, max_priority = tip)

The next block's base fee is the last entry of `baseFeePerGas` (feeHistory returns one more
than the blocks asked for); the tip is the median of the 50th-percentile rewards of the last
blocks, at least `min_tip` (1 wei by default; anvil's blocks report 1 gwei). Twice the base
fee keeps a transaction includable through six full blocks of base-fee rises (12.5% each).
The request's cap is applied by the account aggregate, not here.
"""

from __future__ import annotations

from omc_domain.account import Fees
from omc_txmanager.rpc import Rpc

BLOCKS = 5
PERCENTILE = 50


def market_fees(rpc: Rpc, *, min_tip: int = 1) -> Fees:
    history = rpc.fee_history(BLOCKS, PERCENTILE)
    base_fees = [int(fee, 16) for fee in history.get("baseFeePerGas") or []]
    next_base = base_fees[-1] if base_fees else 0
    rewards = sorted(int(row[0], 16) for row in history.get("reward") or [] if row)
    tip = rewards[len(rewards) // 2] if rewards else rpc.max_priority_fee()
    tip = max(tip, min_tip)
    return Fees(max_fee=2 * next_base + tip, max_priority=tip)
