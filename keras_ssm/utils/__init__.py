"""Small helpers shared across keras-ssm (argument validation)."""
