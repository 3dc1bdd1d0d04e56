"""Public data acquisition: TCIA (NBIA REST API v4) CT series and GDC RNA-seq, clinical and MAFs.

Every download streams into a temporary file beside its target, is checked against the
checksum the server publishes, and is moved into place atomically, so a corrupt or partial
file never sits at a final path. Every file fetched is recorded in a downloads manifest
(``manifest.py``) that the provenance stage joins.
"""
