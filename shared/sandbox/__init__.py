"""Confined child processes for parsing untrusted bytes (DESIGN.md section 8): see runner.py."""
from shared.sandbox.runner import (
    SANDBOX_DEFAULTS,
    SandboxFailed,
    SandboxSettings,
    SandboxUnavailable,
    run_sandboxed,
)

__all__ = ["SANDBOX_DEFAULTS", "SandboxFailed", "SandboxSettings", "SandboxUnavailable", "run_sandboxed"]
