"""Stage 6, models: task settings, the selection chain, radscore, LASSO-Cox, classifiers,
clinical comparator scores, the multi-phase CNN and the task runners."""
