"""The bridge's HTTP server: public lookup, verification and the JSON API."""
