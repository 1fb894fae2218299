"""What a source's glob can reach, decided from its text: the folder it starts from, whether it
can match a file inside a given folder, and whether it is a well-formed glob at all."""

from __future__ import annotations

import fnmatch
import os
import re
from typing import Optional

# Never read there: a bad file is copied into quarantine, so a pattern into them would leak or harm the host.
SYSTEM_FOLDERS = ("/bin", "/boot", "/dev", "/etc", "/lib*", "/proc", "/root", "/run", "/sbin", "/sys", "/usr",
                  "/var/lib")
_MAGIC = re.compile(r"[*?[]")
_FAMILY_NAMES = {"lib*": ("lib", "lib32", "lib64", "libx32", "libexec")}


def absolute_pattern(pattern: str, home: object) -> str:
    """The pattern as ingest searches it: `~` expanded, a relative one under the home folder."""
    full = os.path.expanduser(pattern)
    return full if os.path.isabs(full) else os.path.join(str(home), full)


def pattern_folder(pattern: str) -> str:
    """The folder a glob starts from: its leading components that hold no wildcard."""
    parts = os.path.normpath(pattern).split(os.sep)
    fixed = []
    for part in parts[:-1]:
        if _MAGIC.search(part):
            break
        fixed.append(part)
    return os.sep.join(fixed) or (os.sep if pattern.startswith(os.sep) else ".")


def pattern_can_reach(pattern: str, folder: str, skip: Optional[str] = None) -> bool:
    """Whether an absolute glob can match a file inside `folder` (which may itself end in a wildcard, as /lib*).

    Decided from the texts alone, and again with the symbolic links of the pattern's own folder resolved
    (a drop folder that is a link into /etc reads /etc). Files under `skip` (the home) never count.
    """
    start = pattern_folder(pattern)
    rest = os.path.normpath(pattern)[len(start):].lstrip(os.sep)
    for base in {os.path.normpath(start), os.path.realpath(start)}:
        if skip and (base + os.sep).startswith(skip.rstrip(os.sep) + os.sep):
            continue
        if _reaches(_components(base) + _components(rest), _components(folder)):
            return True
    return False


def _components(path: str) -> list[str]:
    return [p for p in os.path.normpath(path).split(os.sep) if p and p != "."]


def _reaches(pattern: list[str], folder: list[str]) -> bool:
    """True when some path the glob components match lies strictly inside `folder`."""
    if not folder:
        return bool(pattern)  # a file below the folder needs at least one more component
    if not pattern:
        return False
    head, tail = pattern[0], pattern[1:]
    if head == "**":  # zero or more folders
        return _reaches(tail, folder) or _reaches(pattern, folder[1:])
    if _component_matches(head, folder[0]):
        return _reaches(tail, folder[1:])
    return False


def _component_matches(glob_part: str, name: str) -> bool:
    if _MAGIC.search(name):  # a folder family such as lib*: the part names one of them, or matches a usual one
        return fnmatch.fnmatchcase(glob_part, name) or any(
            fnmatch.fnmatchcase(usual, glob_part) for usual in _FAMILY_NAMES.get(name, ()))
    return fnmatch.fnmatchcase(name, glob_part)


def glob_problem(pattern: str) -> Optional[str]:
    if not pattern.strip():
        return "is empty"
    if "\x00" in pattern:
        return "contains a NUL character"
    depth = 0
    for ch in pattern:
        if ch == "[":
            depth += 1
        elif ch == "]" and depth:
            depth -= 1
    if depth:
        return "has a '[' without its ']'"
    for part in re.split(r"[\\/]", pattern):
        if "**" in part and part != "**":
            return "'**' must be a whole path component, as in inbox/**/*.csv"
    return None
