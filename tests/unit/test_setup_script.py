"""scripts/setup.sh: a missing Python 3.10 stops with instructions instead of a stack trace."""

import shutil
import subprocess
import sys
from pathlib import Path


def test_missing_python310_is_explained(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "cat", "sha256sum", "cut"):
        src = shutil.which(tool)
        assert src, tool
        (bin_dir / tool).symlink_to(src)
    (bin_dir / "python3").symlink_to(sys.executable)  # a 3.11, but no 3.10 anywhere
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    r = subprocess.run(["bash", "scripts/setup.sh"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "needs Python 3.10" in r.stderr and "pyenv install 3.10" in r.stderr and "RASA_PYTHON" in r.stderr
