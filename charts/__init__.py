"""Charts for decision makers: plain-data specs, matplotlib drawings (Agg) and a content-hash cache.

Pure: imports neither storage nor bot nor handlers. handlers/charts.py assembles the specs from
the database; the platform edges send the PNGs.
"""
