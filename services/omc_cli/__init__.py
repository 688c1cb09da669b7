"""The `omc` command line."""
