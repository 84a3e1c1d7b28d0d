import pytest

from jobs import tables


def test_to_table_rejects_wrong_columns() -> None:
    with pytest.raises(ValueError, match="do not match the schema"):
        tables.to_table("rejects", {"run_id": ["r"], "source": ["a"]})
