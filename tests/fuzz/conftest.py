"""The fuzzer uses the shared two-town world (tianmu/conftest.py): 甲镇 with village A1, 蔺镇 with village B1."""

from tianmu.comms.tests.conftest import people  # noqa: E402, F401 - the responsible persons (comms routes)
from tianmu.conftest import records, world  # noqa: F401 - fixtures
