"""The unit tier's fixtures."""

from unit_fixtures import *  # noqa: F403
