"""The agent runtime: commands become task decisions, inferences, policy verdicts and
transaction requests, all recorded on the log (see `runtime` for the contract, `app` for the
faust composition root, `python -m omc_runtime` to run it)."""
