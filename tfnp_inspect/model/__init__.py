"""The data model: record layouts, records and their lazy views, stats, options.

Knows nothing of TensorFlow, IPython, widgets, pandas or file formats; the layers above reach it,
never the other way round (see :mod:`.seams` for how records still render themselves).
"""
