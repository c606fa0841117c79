"""The labeling tools people already run, as lit_al's front end.

``labelstudio``: a live Label Studio project (push a batch, pull the answers, watch and
loop) through ``label-studio-sdk`` (the ``labelstudio`` extra). Heavy SDKs are imported
only in this package, and only when a command needs them.
"""
