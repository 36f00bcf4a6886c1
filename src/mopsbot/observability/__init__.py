"""Operations: Prometheus metrics (`metrics`) and log setup (`logs`). Imports nothing else from mopsbot."""
