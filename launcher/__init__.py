"""The ``launcher`` CLI: validate a grid and run it (locally now; Kubernetes later). Never imports the ML stack."""
