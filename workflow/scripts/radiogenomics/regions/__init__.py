"""Stage 4, regions: body mask, peritumoral shell, population-level GMM habitats and their
recovery of the planted truth."""
