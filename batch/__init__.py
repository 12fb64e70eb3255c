"""Batch jobs: bronze to silver to gold, training, ONNX export ."""
