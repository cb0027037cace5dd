"""Unit tests of check-modules.py on synthetic source trees (python3 -m unittest scripts/test_check_modules.py)."""

import importlib.util
import pathlib
import sys
import tempfile
import textwrap
import unittest

_spec = importlib.util.spec_from_file_location(
    "check_modules", pathlib.Path(__file__).resolve().parent / "check-modules.py"
)
check_modules = importlib.util.module_from_spec(_spec)
sys.modules["check_modules"] = check_modules
_spec.loader.exec_module(check_modules)


class Workspace:
    """A workspace in a temporary folder: `files` maps paths to Rust (or TOML) sources."""

    def __init__(self, files: dict[str, str]):
        self._dir = tempfile.TemporaryDirectory()
        self.root = pathlib.Path(self._dir.name)
        files = {"Cargo.toml": '[workspace]\nmembers = ["crates/*"]\n', **files}
        for path, text in files.items():
            target = self.root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(text))
        for crate in {p.split("/")[1] for p in files if p.startswith("crates/")}:
            manifest = self.root / "crates" / crate / "Cargo.toml"
            if not manifest.exists():
                manifest.write_text(f'[package]\nname = "{crate}"\n')

    def findings(self) -> list[str]:
        try:
            return check_modules.check(self.root)
        finally:
            self._dir.cleanup()


def lib(*modules: str) -> str:
    return "".join(f"pub mod {m};\n" for m in modules)


class WorkspaceCase(unittest.TestCase):
    def one_finding(self, files: dict[str, str]) -> str:
        """The single finding for a workspace of `files`; fails when there are none or several."""
        findings = Workspace(files).findings()
        self.assertEqual(len(findings), 1, findings)
        return findings[0]


class Cycles(WorkspaceCase):
    def test_a_cycle_between_two_files_is_found_and_names_both(self):
        finding = self.one_finding(
            {
                "crates/app/src/lib.rs": lib("store", "handlers"),
                "crates/app/src/store.rs": "use crate::handlers::Contact;\npub struct Store;\n",
                "crates/app/src/handlers.rs": "use crate::store::Store;\npub struct Contact;\n",
            }
        )
        self.assertIn("import cycle", finding)
        self.assertIn("crates/app/src/store.rs:1 uses crate::handlers::Contact", finding)
        self.assertIn("crates/app/src/handlers.rs:1 uses crate::store::Store", finding)

    def test_a_child_using_its_parent_through_super_while_the_parent_uses_it_is_a_cycle(self):
        finding = self.one_finding(
            {
                "crates/app/src/lib.rs": lib("exchange"),
                "crates/app/src/exchange/mod.rs": "mod rest;\npub struct Core;\npub fn run() { rest::call(); }\n",
                "crates/app/src/exchange/rest.rs": "use super::Core;\npub fn call() {}\n",
            }
        )
        self.assertIn("crates/app/src/exchange/mod.rs:3 uses rest::call", finding)
        self.assertIn("crates/app/src/exchange/rest.rs:1 uses super::Core", finding)

    def test_a_layered_tree_passes(self):
        findings = Workspace(
            {
                "crates/app/src/lib.rs": lib("store", "handlers", "server") + "pub use store::Store;\n",
                "crates/app/src/store.rs": "pub struct Store;\npub struct Contact;\n",
                # crate::Store is re-exported by lib.rs: the edge goes to store.rs, not to lib.rs.
                "crates/app/src/handlers.rs": "use crate::Store;\nuse crate::store::{self, Contact};\n",
                "crates/app/src/server.rs": "pub fn run() { crate::handlers::route(); }\n",
            }
        ).findings()
        self.assertEqual(findings, [])

    def test_imports_in_cfg_test_modules_and_comments_are_not_edges(self):
        findings = Workspace(
            {
                "crates/app/src/lib.rs": lib("a", "b"),
                "crates/app/src/a.rs": "use crate::b::B;\npub struct A;\n",
                "crates/app/src/b.rs": (
                    "pub struct B; // crate::a::A\n"
                    "/// Unlike [`crate::a::A`].\n"
                    'const S: &str = "crate::a::A";\n'
                    "#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n"
                ),
            }
        ).findings()
        self.assertEqual(findings, [])


class ProtocolImports(WorkspaceCase):
    def test_an_import_from_db_into_a_protocol_module_is_found(self):
        finding = self.one_finding(
            {
                "crates/shared/src/lib.rs": lib("db", "superid", "clients"),
                "crates/shared/src/db/mod.rs": "pub mod models;\n",
                "crates/shared/src/db/models.rs": "pub enum TenantState { Active }\n",
                "crates/shared/src/superid/mod.rs": "pub mod exchange;\n",
                "crates/shared/src/superid/exchange.rs": "use crate::db::models::TenantState;\n",
                # Outside the protocol modules the same import is allowed.
                "crates/shared/src/clients.rs": "use crate::db::models::TenantState;\n",
            }
        )
        self.assertIn("crates/shared/src/superid/exchange.rs:1", finding)
        self.assertIn("protocol module `superid` imports from `db`", finding)

    def test_a_config_path_in_code_is_found_and_a_protocol_only_tree_passes(self):
        finding = self.one_finding(
            {
                "crates/shared/src/lib.rs": lib("config", "http", "jwt"),
                "crates/shared/src/config.rs": "pub struct Settings;\n",
                "crates/shared/src/http.rs": "pub fn client(s: &crate::config::Settings) {}\n",
                "crates/shared/src/jwt.rs": "use crate::http::client;\n",
            }
        )
        self.assertIn("crates/shared/src/http.rs:1: protocol module `http` imports from `config`", finding)

    def test_a_protocol_crate_depending_on_shared_is_found(self):
        name = check_modules.PROTOCOL_CRATES[0]
        finding = self.one_finding(
            {
                "crates/shared/src/lib.rs": "",
                "crates/proto/Cargo.toml": f'[package]\nname = "{name}"\n[dependencies]\nshared = {{ path = "../shared" }}\n',
                "crates/proto/src/lib.rs": "",
            }
        )
        self.assertIn("crates/proto/Cargo.toml: the protocol crate depends on `shared`", finding)


class SqlLiterals(WorkspaceCase):
    MODELS = """
        pub enum TenantState { Pending, Active }
        impl TenantState {
            pub fn as_str(self) -> &'static str {
                match self { Self::Pending => "pending", Self::Active => "grown_up" }
            }
        }
    """

    def db_finding(self, module: str, source: str) -> str:
        """The single finding for a db module `module` holding `source`, beside the models above."""
        return self.one_finding(
            {
                "crates/shared/src/lib.rs": lib("db"),
                "crates/shared/src/db/mod.rs": lib("models", module),
                "crates/shared/src/db/models.rs": self.MODELS,
                f"crates/shared/src/db/{module}.rs": source,
            }
        )

    def test_a_state_literal_in_sql_query_is_found_with_its_line(self):
        finding = self.db_finding(
            "queue",
            (
                "fn claim() {\n"
                '    diesel::sql_query(\n        "UPDATE tenants SET x = 1 \\\n'
                "         WHERE state IN ('grown_up') AND note = 'free text'\",\n    );\n}\n"
            ),
        )
        self.assertIn("crates/shared/src/db/queue.rs:4: state or action literal 'grown_up'", finding)

    def test_literals_in_dsl_sql_and_raw_strings_are_found_and_bound_parameters_pass(self):
        finding = self.db_finding(
            "tickets",
            (
                'fn a() { diesel::dsl::sql::<Bool>(r#"state = \'pending\'"#); }\n'
                "fn b() { diesel::sql_query(\"SELECT 1 WHERE state = $1 AND 'x' = 'y'\").bind(s); }\n"
                "fn c() { let s = \"state = 'pending'\"; }\n"
            ),
        )
        self.assertIn("tickets.rs:1: state or action literal 'pending' in a SQL string passed to sql()", finding)

    def test_a_literal_in_a_sql_constant_named_in_the_call_is_found(self):
        finding = self.db_finding(
            "queue",
            (
                'const CLAIM: &str = "SELECT id FROM tenants\n WHERE state = \'pending\'";\n'
                'const OTHER: &str = "state = \'pending\'";\n'
                "fn claim() { diesel::sql_query(CLAIM).load(conn); }\n"
            ),
        )
        self.assertIn("queue.rs:2: state or action literal 'pending'", finding)


if __name__ == "__main__":
    unittest.main()
