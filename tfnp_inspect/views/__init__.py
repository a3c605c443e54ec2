"""Presentation: text and HTML reports of records, stats and traces, and the live panel."""
