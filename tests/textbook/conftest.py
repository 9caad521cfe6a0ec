import pytest
from support.textbooks import demo_book


@pytest.fixture(scope="session")
def book(tmp_path_factory):
    """The demo course's built textbook (shared with the hub test; built once per session)."""
    return demo_book(tmp_path_factory.getbasetemp() / "textbook-demo")
