"""Decks from a plain outline (title, bullets, chart, notes): PowerPoint with python-pptx, or Markdown.

Pure like charts/: the outline is assembled by handlers/qbr_pack.py, rendered here.
"""
