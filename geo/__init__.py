"""Spatial math: grid, catchments, coverage index, CRS conversion."""
