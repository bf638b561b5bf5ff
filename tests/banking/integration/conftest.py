"""The integration tier's fixtures."""

from integration_fixtures import *  # noqa: F403
