"""Generators for the deterministic demo data sets written by ``tools/make_demo_data.py``.

Every image shows coloured shapes (the classes) over a textured background, so class, box and
mask are known exactly. Each module writes one family of on-disk layouts.
"""
