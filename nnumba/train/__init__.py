"""Trainers: gradient descent, mini-batch SGD, and the perceptron."""
from .base import History, Trainer, TrainingDiverged
from .gd import GDTrainer
from .metrics import accuracy, evaluate
from .perceptron import PerceptronResult, train_perceptron
from .sgd import SGDTrainer

TRAINERS = {"sgd": SGDTrainer, "gd": GDTrainer}

__all__ = ["Trainer", "SGDTrainer", "GDTrainer", "History", "TrainingDiverged",
           "train_perceptron", "PerceptronResult", "accuracy", "evaluate", "TRAINERS"]
