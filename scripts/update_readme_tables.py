"""Regenerate the table reference in README.md from the schemas in jobs/tables.py."""

import re
from pathlib import Path

from jobs.tables import markdown_reference

readme = Path(__file__).resolve().parents[1] / "README.md"
text = readme.read_text()
block = "<!-- tables:start -->\n" + markdown_reference() + "<!-- tables:end -->"
readme.write_text(re.sub(r"<!-- tables:start -->\n.*?<!-- tables:end -->", lambda _: block, text, flags=re.S))
