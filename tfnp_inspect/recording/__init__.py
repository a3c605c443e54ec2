"""Recording: the probe on the hot path, the instrumented ``numpy_function``, the active plan,
sessions (``trace``/``install``), the recorder, ``Trace``, TensorFlow hooks and array description."""
