"""Make a permission check real when the tests run as root.

Root reads any file through its DAC capabilities. ``without_dac_override()`` is a command prefix
that drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set before exec (``setpriv``,
util-linux), so the kernel refuses a mode-0 file for real, while the process stays root and can
still read the repository wherever it was cloned.
"""

from __future__ import annotations

import os
import shutil

import pytest


def without_dac_override() -> list[str]:
    """A command prefix that makes file permissions bind; empty when not root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is missing: root cannot be denied")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
