"""Front-end assets of the trace panel and the Jupyter-side configuration (shipped as package data)."""
