"""Shared fixtures for the NLU tests: the demo portfolio and a 10,000-account one."""

from __future__ import annotations

from datetime import date

import pytest

from domain.accounts_index import AccountIndex, AccountName
from storage.demo_names import portfolio_names

TODAY = date(2026, 11, 23)  # a Monday; the evaluation set is written against this date
PEOPLE = ("Dana", "Marco", "Priya", "Sam", "Lena", "Jordan", "Alex")


def build_index(count: int) -> AccountIndex:
    return AccountIndex(
        AccountName(i + 1, name, aliases)
        for i, (name, aliases) in enumerate(portfolio_names(count))
    )


@pytest.fixture(scope="session")
def demo_index() -> AccountIndex:
    return build_index(60)


@pytest.fixture(scope="session")
def big_index() -> AccountIndex:
    return build_index(10_000)


@pytest.fixture(scope="session")
def ids(demo_index: AccountIndex) -> dict[str, int]:
    """Account id by name in the demo portfolio."""
    return {name: i + 1 for i, (name, _) in enumerate(portfolio_names(60))}
