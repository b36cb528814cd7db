"""Loading a checkpoint: a missing local folder is one clear error naming it, before transformers is asked."""
from __future__ import annotations

import pytest

from graftkit.config import ModelConfig
from graftkit.errors import ConfigError
from graftkit.modeling.load import load_pretrained


@pytest.mark.parametrize("where", ["./no-such-model", "/no/such/model"])
def test_a_missing_local_folder_is_named(where):
    with pytest.raises(ConfigError, match=f"model.name_or_path: folder '{where}' does not exist"):
        load_pretrained(ModelConfig(name_or_path=where), object, {})
