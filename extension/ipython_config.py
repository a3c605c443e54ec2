# Load tfnp_inspect in every IPython session and Jupyter kernel of this profile, so that
# %%npfunc and %npfunc work without a %load_ext line in each notebook.
#
# Copy this file to ~/.ipython/profile_default/ipython_config.py, or append the line below to
# the one already there (`ipython profile locate` prints the profile's folder).
c = get_config()  # noqa: F821 - provided by IPython when it reads this file

# append (rather than assign) keeps extensions that other lines of the file load.
c.InteractiveShellApp.extensions.append("tfnp_inspect")
