"""Evaluation and pictures: toy mode metrics, image metrics (FID, KID, precision/recall, density/coverage on the
digits classifier's or Inception-v3's features), class accuracy, the metrics and sample-grid callbacks.

May import: data (the toy distributions), torch, Lightning, torchmetrics. Not: training, losses, cli.
"""
from .callback import EVALUATORS, MetricsCallback, generate
from .features import DigitsFeatures, InceptionFeatures, feature_extractor
from .fid import ImageMetrics, frechet_distance, image_metrics
from .frechet import (DigitsClassifier, class_accuracy, digits_metrics, load_digits_classifier,
                      train_digits_classifier)
from .precision_recall import density_coverage, precision_recall
from .samples import SampleGrid
from .toys import N_SAMPLES, toy_metrics

__all__ = [
    "MetricsCallback", "SampleGrid", "EVALUATORS", "generate", "toy_metrics", "N_SAMPLES",
    "digits_metrics", "class_accuracy", "frechet_distance", "ImageMetrics", "image_metrics", "precision_recall",
    "density_coverage", "DigitsFeatures", "InceptionFeatures", "feature_extractor",
    "DigitsClassifier", "load_digits_classifier", "train_digits_classifier",
]
