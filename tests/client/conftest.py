from tests.background.conftest import make_job

__all__ = ["make_job"]
