"""Helpers the tests share: free ports, a real hub, a throwaway PostgreSQL, a headless browser."""
