"""README promises that must stay true: the quick-start commands exist and the published numbers are the shipped ones."""

import os
from pathlib import Path

from transfer.published import published_markdown

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_published_block_is_generated_from_the_shipped_json():
    block = README.split("<!-- published:begin -->\n")[1].split("<!-- published:end -->")[0]
    assert block == published_markdown()
    assert "| Barlow Twins | 73.2 | 91.0 |" in block  # Table 1 of the paper, ImageNet linear top-1/top-5


def test_every_script_and_doc_the_readme_names_exists():
    for name in ("tools/demo.sh", "tools/test.sh", "tools/pretrain.sh", "tools/transfer_suite.sh"):
        assert f"{name}" in README or name.replace("tools/", "./tools/") in README
        assert os.access(REPO / name, os.X_OK), name
    for line in README.splitlines():
        for part in line.split("(")[1:]:
            target = part.split(")")[0]
            if target.startswith("docs/"):
                assert (REPO / target).is_file(), target
    assert (REPO / ".ci" / "run").is_file()
