"""Small helpers shared across keras-ssm: argument validation and the
deprecated argument names (`deprecation`)."""
