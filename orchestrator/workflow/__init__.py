"""The workflow language: the typed spec (spec.py), the YAML loader (load.py), step signatures
(signature.py), routes including the implicit ones, validation, discovery and diagrams. It knows
steps only by their signatures: whoever loads a file for a run passes them in (the engine's
engine/loader.py). Nothing is imported here, so finding files stays cheap (`nemoclaw --help`)."""
