"""Evaluation and pictures: toy mode metrics, digits Fréchet distance, the metrics and sample-grid callbacks.

May import: data (the toy distributions), torch, Lightning. Not: training, losses, cli.
"""
from .callback import EVALUATORS, MetricsCallback, generate
from .frechet import DigitsClassifier, digits_metrics, frechet_distance, load_digits_classifier, train_digits_classifier
from .samples import SampleGrid
from .toys import N_SAMPLES, toy_metrics

__all__ = [
    "MetricsCallback", "SampleGrid", "EVALUATORS", "generate", "toy_metrics", "N_SAMPLES",
    "digits_metrics", "frechet_distance", "DigitsClassifier", "load_digits_classifier", "train_digits_classifier",
]
