import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

# pytest-xdist runs one worker per core: more intra-op threads per worker only oversubscribe the cores
__import__("torch").set_num_threads(1)

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# `make test-deep`, run by hand: many more, freshly drawn examples of every property
settings.register_profile("deep", max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

MAIN_PROPERTY_EXAMPLES = 400


def main_property() -> settings:
    """Settings for the main kernel properties: a few hundred examples in every run (derandomised in CI).

    The `deep` profile's larger count wins; the rest (derandomisation, deadline) comes from the loaded profile.
    """
    return settings(max_examples=max(MAIN_PROPERTY_EXAMPLES, settings.default.max_examples))


requires_cuda = pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
