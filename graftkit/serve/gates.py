"""What every graftkit HTTP app guards itself with: API keys, admin keys, the masked logger, request
metrics and rate limits, built once from the serve settings (the model service and the application
servers share it, so their gates cannot drift apart)."""
from __future__ import annotations

import os

from graftkit.errors import ConfigError
from graftkit.serve.limits import RateLimits
from graftkit.serve.logs import get_logger, mask_library_logs
from graftkit.serve.metrics import ServiceMetrics
from graftkit.serve.security import KeyStore, key_file_warning, load_key_hashes
from graftkit.serve.settings import ServeConfig


class Gates:
    """Keys, logger, metrics and limits of one app.

    Raises:
        ConfigError: no API keys configured (and anonymous access not allowed).
    """

    def __init__(self, settings: ServeConfig):
        self.settings = settings
        self.keys = KeyStore(load_key_hashes(settings.api_keys, settings.api_keys_file, dict(os.environ)))
        if not self.keys.hashes and not settings.allow_anonymous:
            raise ConfigError("no API keys configured: set GRAFTKIT_API_KEYS, --api-keys-file FILE, "
                              "or --allow-anonymous for local experiments")
        self.admin_keys = KeyStore(load_key_hashes([], settings.admin_api_keys_file, {}))
        self.log = get_logger(settings.log_level)
        mask_library_logs()
        for path in (settings.api_keys_file, settings.admin_api_keys_file):
            if warning := key_file_warning(path):
                self.log.warning(warning, extra={"x_event": "key_file_permissions"})
        self.metrics = ServiceMetrics()
        self.limits = RateLimits(settings)
