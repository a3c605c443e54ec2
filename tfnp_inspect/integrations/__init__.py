"""Where tfnp_inspect plugs into other tools: IPython magics and the pytest plugin."""
