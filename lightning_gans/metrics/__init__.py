"""Evaluation: toy mode metrics (SPEC §4), digits Fréchet distance / classes covered, plots, and the callback."""
from .callback import MetricsCallback, generate
from .frechet import DigitsClassifier, digits_metrics, frechet_distance, load_digits_classifier, train_digits_classifier
from .toys import N_SAMPLES, toy_metrics

__all__ = [
    "MetricsCallback", "generate", "toy_metrics", "N_SAMPLES",
    "digits_metrics", "frechet_distance", "DigitsClassifier", "load_digits_classifier", "train_digits_classifier",
]
