"""Package data: the models this project trained (installed as `fer_edge_models`)."""
