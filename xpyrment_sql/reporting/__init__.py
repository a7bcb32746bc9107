"""Rendering of result records: plain text, the shareable HTML/Markdown report, the traffic chart.

Nothing here sends a query: every function takes records the checks already returned, and no module in
this package imports the monitor, the checks, the queries or the source.

* ``records``: :class:`~xpyrment_sql.reporting.records.MonitoringReport`, what one run leaves to render;
* ``text``: the plain-text summary for terminals and logs, and the phrases every format shares;
* ``sections``: the shareable report's content as format-neutral headed sections;
* ``documents``: those sections as a self-contained HTML page or as Markdown, written to a file;
* ``charts``: the four-panel traffic chart drawn from a traffic matrix (matplotlib).
"""
