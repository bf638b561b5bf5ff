"""Fixtures of the payments tests: the two processor simulators as a process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import rinha


@pytest.fixture(scope="session")
def processors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rinha.Processors]:
    """The two Rinha payment processor simulators (`paycore processors`) as a process; tests
    reset them (delay, failure, payments) before use."""
    with rinha.running_processors(tmp_path_factory.mktemp("processors")) as running:
        yield running
