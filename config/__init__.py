"""Configuration: process settings from the environment, the routine's rules from routine.toml."""

from config.routine import RoutineConfigError, RoutinePolicy, load_routine
from config.settings import ConfigError, Settings, load_settings

__all__ = [
    "ConfigError",
    "RoutineConfigError",
    "RoutinePolicy",
    "Settings",
    "load_routine",
    "load_settings",
]
