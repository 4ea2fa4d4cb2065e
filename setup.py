"""Packages for setuptools: every ``frugalai*`` package, plus ``frugalai._models``.

``frugalai._models`` is the repository's top-level ``models/`` (pyproject maps it with
``package-dir``): the shipped bundles stay in one place in git and the wheel carries them as
``frugalai/_models/<name>/``. Package discovery cannot see a mapped directory, so the list is
made here rather than with ``[tool.setuptools.packages.find]``.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["frugalai", "frugalai.*"]), "frugalai._models"])
