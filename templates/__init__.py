"""Jinja2 templates: slack/*.json.j2 (Block Kit), teams/*.json.j2 (Adaptive Cards 1.5), text/*.txt.j2."""
