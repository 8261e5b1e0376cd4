"""The GitHub App frontend (not built yet): first replies to Discussions through GraphQL."""
