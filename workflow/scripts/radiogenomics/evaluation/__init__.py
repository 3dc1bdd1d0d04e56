"""Stage 7, evaluation: binary and survival metrics, the evaluation figures and the stage
that evaluates a task's frozen predictions."""
