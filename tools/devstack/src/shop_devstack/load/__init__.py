"""`make load`: Locust, headless, for a fixed time, against the running system."""
