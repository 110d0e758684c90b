"""Fixtures the model backends' tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tinyarms.models import openai_wire


@pytest.fixture
def fresh_shapes() -> Iterator[None]:
    """Each test starts with no remembered response_format (servers reuse ports across tests)."""
    openai_wire.forget_shapes()
    yield
    openai_wire.forget_shapes()
