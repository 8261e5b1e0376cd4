"""The Discord frontend (not built yet): talks to the engine only through its answer protocol."""
