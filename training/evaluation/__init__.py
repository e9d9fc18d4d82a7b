"""The parts of a model's evaluation (``python -m redheart.training.evaluate``, :mod:`..evaluate`, runs them): which
data each evaluation reads (:mod:`.sets`), the model's outputs on it (:mod:`.predictions`), the decision thresholds
(:mod:`.thresholds`), the metrics with their intervals (:mod:`.scores`), Korean against English
(:mod:`.crosslingual`), and what is read from the model's folder (:mod:`.model_folder`)."""
