"""Observability shared by every service: JSON log lines (`omc_obs.logging`)."""
