"""The MySQL read model: tasks, their audit trail, agents, policies, budgets, transactions,
receipts and anchors, folded from the log by `projector`, read by the gateway through
`queries`, rebuilt from offset 0 by `replay`. Run the projector with `python -m omc_proj_mysql`.
"""
