"""The public surface: every name in ``graphcollapse.__all__`` exists, is documented with
a runnable example, and the list is sorted and free of duplicates."""

from __future__ import annotations

import inspect

import pytest

import graphcollapse as gc


def test_all_is_sorted_and_unique():
    assert gc.__all__ == sorted(gc.__all__)
    assert len(set(gc.__all__)) == len(gc.__all__)


@pytest.mark.parametrize("name", gc.__all__)
def test_public_name_exists_and_has_an_example(name):
    assert hasattr(gc, name), f"graphcollapse.{name} is in __all__ but does not exist"
    obj = getattr(gc, name)
    # Classes: the class docstring; functions: their own; data objects: their type's.
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"graphcollapse.{name} has no docstring"
    assert ">>>" in doc, f"graphcollapse.{name}: the docstring has no example (>>>)"


def test_star_import_gives_exactly_all():
    ns: dict = {}
    exec("from graphcollapse import *", ns)
    public = {k for k in ns if not k.startswith("__")}
    assert public == set(gc.__all__)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        gc.no_such_name  # noqa: B018
