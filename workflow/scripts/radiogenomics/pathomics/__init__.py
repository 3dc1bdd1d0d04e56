"""Pathomics (S3): whole-slide images -> tissue tiles at a magnification -> CNN tile features
-> attention multiple-instance learning -> a recurrence score, evaluated like the other scores."""
