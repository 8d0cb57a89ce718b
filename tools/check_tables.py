#!/usr/bin/env python3
"""Check that the lists the repository keeps in several languages agree.

The single source of truth is named first in each check; everything else
must match it:

  error codes      include/cachee_l0.h (#define CACHEE_L0_... (-31xxx))
                   -> core/l0/errors.c (cachee_l0_strerror: a text for each)
                   -> core/l0/errors.go (a sentinel for each, and codeErr)
                   -> python/cachee/_ext/errors.c (raise_l0: an exception for
                      each code that can reach Python; the others are listed
                      below with the reason they never do)
  exceptions       python/cachee/_errors.py (classes and __all__)
                   -> python/cachee/__init__.pyi (imports and __all__; the
                      classes type themselves: _errors.py has no stub), the module state of the
                      extension (python/cachee/_ext/ext.h, CacheeState) and
                      the table that fills it (python/cachee/_ext/errors.c)
  compile flags    Makefile (CWARN)
                   -> setup.py (cflags) and the cgo CFLAGS of core/l0/l0.go
  engine sources   core/l0/*.c: the Makefile (L0_SRC), setup.py and
                   MANIFEST.in must take them by that pattern

    python3 tools/check_tables.py      # exit 0 if all agree, else 1

`make lint` and the Python test suite (tests/python/test_tables.py) run it.
"""
import ast
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Engine codes raise_l0 never sees, and why: the callers turn them into
# results, never into exceptions.
NOT_RAISED = {
    "CACHEE_L0_NOTFOUND": "a miss: None, a default or KeyError, decided by the caller",
    "CACHEE_L0_EXISTS": "add() returns False",
    "CACHEE_L0_STALE": "only cachee_l0_promote returns it (the Go core)",
    "CACHEE_L0_E_BUFFER_TOO_SMALL": "the extension reads through views, never into buffers",
    "CACHEE_L0_E_RETRY": "optimistic reads retry",
    "CACHEE_L0_E_BAD_PIN": "views release their own pins exactly once",
    "CACHEE_L0_E_BUSY": "loader locks: _load_lock returns False",
}


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def function_body(text, signature):
    """The text of a C/Go function from its signature to its closing brace
    at column 0."""
    i = text.index(signature)
    j = text.index("\n}\n", i)
    return text[i:j]


def header_codes():
    codes = dict(re.findall(r"#define (CACHEE_L0_(?:NOTFOUND|EXISTS|STALE|E_\w+)) \((-\d+)\)",
                            read("include/cachee_l0.h")))
    return {name: int(v) for name, v in codes.items()}


def check_codes(problems):
    codes = header_codes()
    if len(set(codes.values())) != len(codes):
        problems.append("include/cachee_l0.h: two codes share a value")
    if not codes:
        problems.append("include/cachee_l0.h: no error code found")
    strerror = set(re.findall(r"case (CACHEE_L0_\w+):",
                              function_body(read("core/l0/errors.c"), "const char *cachee_l0_strerror")))
    for name in sorted(set(codes) - strerror):
        problems.append("core/l0/errors.c: cachee_l0_strerror has no text for %s" % name)
    go = read("core/l0/errors.go")
    sentinels = set(re.findall(r"= newErr\(C\.(CACHEE_L0_\w+)\)", go))
    for name in sorted(set(codes) - sentinels):
        problems.append("core/l0/errors.go: no sentinel for %s" % name)
    for name in sorted(sentinels - set(codes)):
        problems.append("core/l0/errors.go: sentinel for %s, which the header lacks" % name)
    codeerr = set(re.findall(r"case C\.(CACHEE_L0_\w+)", function_body(go, "func codeErr")))
    if codeerr and not codeerr <= set(codes):
        problems.append("core/l0/errors.go: codeErr names unknown codes %s"
                        % sorted(codeerr - set(codes)))
    raised = set(re.findall(r"case (CACHEE_L0_\w+):",
                            function_body(read("python/cachee/_ext/errors.c"), "PyObject *raise_l0")))
    for name in sorted(set(codes) - raised - set(NOT_RAISED)):
        problems.append("python/cachee/_ext/errors.c: raise_l0 maps no exception to %s "
                        "(or add it to NOT_RAISED in tools/check_tables.py with the reason)"
                        % name)
    for name in sorted(raised & set(NOT_RAISED)):
        problems.append("tools/check_tables.py: %s is raised after all; drop it from "
                        "NOT_RAISED" % name)
    for name in sorted(set(NOT_RAISED) - set(codes)):
        problems.append("tools/check_tables.py: NOT_RAISED names %s, which the header lacks"
                        % name)


def module_classes(rel):
    tree = ast.parse(read(rel))
    names = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    all_ = None
    for n in tree.body:
        if isinstance(n, ast.Assign) and any(getattr(t, "id", None) == "__all__"
                                             for t in n.targets):
            all_ = [ast.literal_eval(e) for e in n.value.elts] \
                if isinstance(n.value, (ast.List, ast.Tuple)) else None
    return names, all_


def check_exceptions(problems):
    classes, all_ = module_classes("python/cachee/_errors.py")
    if not classes:
        problems.append("python/cachee/_errors.py: no class found")
    if all_ is not None and set(all_) != classes:  # (a computed __all__ is its classes)
        problems.append("python/cachee/_errors.py: __all__ is not the list of its classes")
    if os.path.exists(os.path.join(ROOT, "python/cachee/_errors.pyi")):
        problems.append("python/cachee/_errors.pyi: a second copy of _errors.py; "
                        "the classes type themselves")
    init = read("python/cachee/__init__.pyi")
    imported = set(re.findall(r"^\s+(\w+) as \1,$", init, re.M))
    if imported != classes:
        problems.append("python/cachee/__init__.pyi: imports differ from _errors.py: %s"
                        % sorted(imported ^ classes))
    listed = set(re.findall(r'^\s+"(\w+Error)",$', init, re.M))
    if listed != {c for c in classes if c.endswith("Error")}:
        problems.append("python/cachee/__init__.pyi: __all__ differs from _errors.py: %s"
                        % sorted(listed ^ classes))
    ext = read("python/cachee/_ext/ext.h")
    state = ext[ext.index("Exception classes"):ext.index("} CacheeState;")]
    fields = set(re.findall(r"\*(\w+)", state)) - {"region_hook"}
    if fields != classes:
        problems.append("python/cachee/_ext/ext.h: CacheeState's classes differ: %s"
                        % sorted(fields ^ classes))
    table = set(re.findall(r"^\s+ERROR_CLASS\((\w+)\),", read("python/cachee/_ext/errors.c"), re.M))
    if table != classes:
        problems.append("python/cachee/_ext/errors.c: error_classes differs: %s"
                        % sorted(table ^ classes))


def check_flags(problems):
    mk = read("Makefile")
    m = re.search(r"^CWARN\s*:=\s*(.+)$", mk, re.M)
    if not m:
        problems.append("Makefile: no CWARN")
        return
    want = set(m.group(1).split())
    setup = read("setup.py")
    sm = re.search(r"^cflags = \[(.*?)\]", setup, re.M | re.S)
    have = set(ast.literal_eval("[" + sm.group(1) + "]")) if sm else set()
    if not want <= have:
        problems.append("setup.py: cflags lack %s of the Makefile's CWARN" % sorted(want - have))
    cgo = re.search(r"^#cgo CFLAGS: (.+)$", read("core/l0/l0.go"), re.M)
    have = set(cgo.group(1).split()) if cgo else set()
    if not want <= have:
        problems.append("core/l0/l0.go: cgo CFLAGS lack %s of the Makefile's CWARN"
                        % sorted(want - have))


def check_sources(problems):
    if not re.search(r"^L0_SRC\s*:=\s*\$\(wildcard core/l0/\*\.c\)", read("Makefile"), re.M):
        problems.append("Makefile: L0_SRC is not $(wildcard core/l0/*.c)")
    if '"core", "l0", "*.c"' not in read("setup.py"):
        problems.append("setup.py: the engine's sources are not globbed from core/l0/*.c")
    if "core/l0/*.c" not in read("MANIFEST.in"):
        problems.append("MANIFEST.in: core/l0/*.c is not included")


def main():
    problems = []
    for check in (check_codes, check_exceptions, check_flags, check_sources):
        try:
            check(problems)
        except (OSError, ValueError, AttributeError, SyntaxError) as e:
            problems.append("%s: could not read what it checks: %s" % (check.__name__, e))
    for p in problems:
        print("check_tables: " + p)
    if not problems:
        print("check_tables: error codes, exceptions, compile flags and engine sources agree")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
