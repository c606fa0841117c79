"""The files ``lit_al export`` copies into a folder for ``trust_remote_code`` (torch and transformers only)."""
