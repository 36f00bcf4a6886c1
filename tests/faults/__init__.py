"""Fault tests: real `mopsbot serve --http` replicas, a private PostgreSQL cluster and a Chroma server, broken on
purpose (kill -9, SIGTERM, outages, hangs, corrupt files) while a fake Slack counts the answers."""
