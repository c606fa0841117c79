"""A live Label Studio project as the labeling front end of a run (``lit_al labelstudio push|pull|watch``).

- ``connection``: where the server is and the API key (Label Studio's own ``LABEL_STUDIO_URL`` /
  ``LABEL_STUDIO_API_KEY``), the SDK client, and its errors as one line;
- ``project``: the run's project (found or created, recorded in the run directory without the key)
  and the tasks of a batch;
- ``sync``: push a batch, pull its answers (through the same validated, locked import as ``lit_al label``);
- ``watch``: poll; import answers as they arrive and adopt a background proposal (``lit_al.overlap``), or pull a
  finished batch and train; push the next batch.
"""
