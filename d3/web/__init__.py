"""What D3 serves to people: one read-only HTTP server (`server.py`) for metrics, health,
JSON read models and the dashboard's pages (`pages.py`, `static/`)."""
