"""Reading, validating and splitting labelled data."""
from graftkit.data.dataset import Example, Splits, load_splits, read_examples, rows_to_examples
from graftkit.data.readers import READERS, Row, read_rows

__all__ = ["Example", "Splits", "load_splits", "read_examples", "rows_to_examples", "READERS", "Row", "read_rows"]
