"""Replaces the text between `<!-- NAME:start -->` and `<!-- NAME:end -->`
in BENCHMARKS.md (appending a `## TITLE` section if the markers are absent).

    section.py NAME TITLE TEXT
"""

import pathlib
import re
import sys

name, title, body = sys.argv[1:4]
path = pathlib.Path("BENCHMARKS.md")
text = path.read_text()
block = f"<!-- {name}:start -->\n{body}\n<!-- {name}:end -->"
if f"<!-- {name}:start -->" not in text:
    text += f"\n## {title}\n\n{block}\n"
text = re.sub(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", lambda _: block, text, flags=re.S)
path.write_text(text)
