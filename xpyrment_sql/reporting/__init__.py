"""Rendering of result records: plain text, the shareable HTML/Markdown report, the traffic chart.

Nothing here sends a query: every function takes records the checks already returned.
"""
