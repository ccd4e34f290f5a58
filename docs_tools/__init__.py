"""Tools that keep the documentation honest (tables generated from the committed reports)."""
