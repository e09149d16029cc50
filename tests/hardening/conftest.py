from tests.validator.conftest import net  # noqa: F401 - the shared dev-network fixture
