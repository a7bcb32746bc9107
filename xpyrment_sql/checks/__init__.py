"""Checks: each plans its queries, runs them through ``Source.execute``, hands the small result to
``stats`` and returns a record. The only layer that joins ``queries`` and ``stats``.
"""
