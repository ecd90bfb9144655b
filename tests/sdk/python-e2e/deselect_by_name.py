"""pytest plugin: deselect tests named in a list file (``--deselect-file FILE``).

Each non-blank, non-comment line is ``<node id>  # <reason>``. A node id names a test without
its parametrization, so ``…::test_x`` deselects every ``…::test_x[...]``. An entry that matches
no collected test is an error (the list must not go stale silently).
"""

import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--deselect-file",
        action="append",
        default=[],
        metavar="FILE",
        help="deselect the tests named in FILE ('<node id>  # reason' per line)",
    )


def _read(path):
    entries = {}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            name, _, reason = line.partition("#")
            name = name.strip()
            if not name:
                continue
            if not reason.strip():
                raise pytest.UsageError(f"{path}:{number}: '{name}' has no '# reason'")
            entries[name] = reason.strip()
    return entries


def pytest_collection_modifyitems(session, config, items):
    entries = {}
    for path in config.getoption("deselect_file"):
        entries.update(_read(path))
    if not entries:
        return
    kept, dropped, used = [], [], set()
    for item in items:
        name = item.nodeid.split("[", 1)[0]
        if name in entries:
            dropped.append(item)
            used.add(name)
        else:
            kept.append(item)
    # Only complain about unmatched entries when the whole suite was collected, so that
    # running a single file or -k still works.
    if not config.getoption("keyword") and not config.getoption("markexpr"):
        collected_files = {item.nodeid.split("::", 1)[0] for item in items}
        root = config.rootpath
        stale = [
            n
            for n in entries
            if n not in used
            and (n.split("::", 1)[0] in collected_files or not (root / n.split("::", 1)[0]).exists())
        ]
        if stale:
            raise pytest.UsageError("deselect list names tests that do not exist: " + ", ".join(stale))
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
