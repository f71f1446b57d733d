"""End-to-end applications built on keras-ssm (LRA, forecasting).

Nothing here is imported by `keras_ssm`; each application is a package with
its own `python -m applications.<name>` command line.
"""
