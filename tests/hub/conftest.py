"""The hub's tests reuse the validator tests' dev chain (`net`) and their real Redis."""

from tests.validator.conftest import net  # noqa: F401  (a fixture, used by name)
