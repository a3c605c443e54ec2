"""Builds the optional compiled per-call core (everything else is in pyproject.toml).

The core is a C twin of ``CallProbe.call`` (``tfnp_inspect/recording/_probe_core.c``). Where it
cannot be built (no compiler, no Python headers), the install goes on without it and the
package runs its pure-Python core: ``optional=True``.
"""

import numpy
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tfnp_inspect.recording._probe_core",
            ["tfnp_inspect/recording/_probe_core.c"],
            include_dirs=[numpy.get_include()],
            optional=True,
        ),
    ],
)
