"""Segmentation stage: reference masks, nnU-Net v2 (train and predict), corrections and QC.

``model``: checking an nnU-Net model folder cheaply (JSON only; no torch import).
``nnunet``: writing an nnU-Net raw dataset, planning, preprocessing, training and prediction
through nnunetv2's own API. ``trainer``: the project's short trainer for CPU runs.
``masks``: from a label map or a mask to the final tumour and kidney masks.
``qc``: agreement with a reference mask and the QC sheet.
"""
