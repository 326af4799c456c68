"""Barlow Twins self-supervised pretraining (model, loss, LARS, schedule, augmentations, training)."""
