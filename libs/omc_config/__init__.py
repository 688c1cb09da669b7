"""Configuration read from the environment; see `settings.Settings`."""

from omc_config.settings import MySQLSettings, Settings, StackSettings

__all__ = ["MySQLSettings", "Settings", "StackSettings"]
