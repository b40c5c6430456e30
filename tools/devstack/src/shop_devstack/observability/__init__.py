"""Dashboards (generated Grafana JSON), PromQL metric names, and the Prometheus `make up` runs."""
