from pathlib import Path

import pytest
from nanolab.schema import LabSchema, load_schema

REPO = Path(__file__).resolve().parents[1]
SCHEMA_FILE = REPO / "workflow" / "schemas" / "procedures.yaml"


@pytest.fixture(scope="session")
def lab_schema() -> LabSchema:
    return load_schema(SCHEMA_FILE)
