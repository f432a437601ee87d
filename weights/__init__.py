"""Weights bundled with mattecli (installed as the ``mattecli.bundled`` package; see README.md here)."""
