"""How the suite is laid out stays true: conftest files hold fixtures, helpers live in tests/support/.

A helper in a conftest file gets imported under two names (``conftest`` and
``tests.flows.conftest``), and its state with it; and a fixture that starts a
server, put where the unit tier inherits it, makes the fast tier slow.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
CONFTESTS = sorted(TESTS.rglob("conftest.py"))


def _is_fixture(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return ast.unparse(target) == "pytest.fixture"


def not_fixtures_or_hooks(path: Path) -> list[str]:
    """What a conftest file defines at top level besides fixtures and pytest hooks (imports and its docstring aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for index, node in enumerate(tree.body):
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, ast.FunctionDef) and (
            node.name.startswith("pytest_") or any(_is_fixture(d) for d in node.decorator_list)
        ):
            continue
        found.append(f"line {node.lineno}: {ast.unparse(node).splitlines()[0]}")
    return found


def test_the_suite_has_conftest_files_to_check() -> None:
    assert TESTS / "conftest.py" in CONFTESTS


@pytest.mark.parametrize("path", CONFTESTS, ids=lambda p: str(p.relative_to(TESTS)))
def test_a_conftest_file_defines_only_fixtures_and_hooks(path: Path) -> None:
    assert not_fixtures_or_hooks(path) == [], f"move these to tests/support/: {not_fixtures_or_hooks(path)}"


def test_the_check_sees_a_helper_in_a_conftest_file(tmp_path: Path) -> None:
    conftest = tmp_path / "conftest.py"
    conftest.write_text(
        textwrap.dedent(
            """\
            \"\"\"Fixtures.\"\"\"
            import pytest

            LIMIT = 3


            @pytest.fixture
            def server() -> int:
                return LIMIT


            @pytest.fixture(scope="session")
            def other() -> int:
                return 1


            def pytest_configure(config: object) -> None:
                pass


            def helper() -> int:
                return 2


            class Visitor:
                pass
            """
        )
    )
    assert not_fixtures_or_hooks(conftest) == [
        "line 4: LIMIT = 3",
        "line 21: def helper() -> int:",
        "line 25: class Visitor:",
    ]


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports by their own name (``.conftest`` as ``conftest``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def is_forbidden(module: str) -> bool:
    """A conftest file under any name, the helper module tests/support replaced, or support by its short name."""
    parts = module.split(".")
    return parts[0] == "support" or "conftest" in parts or "recovery_helpers" in parts


@pytest.mark.parametrize("path", sorted(TESTS.rglob("*.py")), ids=lambda p: str(p.relative_to(TESTS)))
def test_helpers_are_imported_from_tests_support_only(path: Path) -> None:
    wrong = {name for name in imported_modules(path) if is_forbidden(name)}
    assert wrong == set(), f"{path.name} imports {wrong}: import helpers from tests.support"


def fixtures_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and any(_is_fixture(d) for d in node.decorator_list)
    }


def test_no_unit_test_gets_a_server(request: pytest.FixtureRequest) -> None:
    """The fixtures of tests/conftest.py start Redis, SMTP, slapd, PostgreSQL or an app; no unit test may use one."""
    servers = fixtures_of(TESTS / "conftest.py")
    assert "backing" in servers
    unit = TESTS / "unit"
    items = [item for item in request.session.items if unit in Path(str(item.path)).parents]
    assert request.node in items
    using = {item.nodeid: sorted(servers & set(getattr(item, "fixturenames", ()))) for item in items}
    assert {nodeid: names for nodeid, names in using.items() if names} == {}
