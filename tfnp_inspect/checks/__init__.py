"""The contracts of ``tf.numpy_function``: one module per contract, switches, and every message.

Mutation and retained references are detected inline by the probe (they need the arrays before
and after the call); the rules, memories and texts live here.
"""
