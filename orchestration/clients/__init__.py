"""Client configuration: one YAML file, validated into typed settings at load time."""

from orchestration.clients.config import (
    ClientConfig,
    ClientsConfig,
    ConfigError,
    FeedSettings,
    SftpSettings,
    load_clients,
)

__all__ = [
    "ClientConfig",
    "ClientsConfig",
    "ConfigError",
    "FeedSettings",
    "SftpSettings",
    "load_clients",
]
