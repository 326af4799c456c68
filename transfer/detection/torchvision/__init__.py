"""The torchvision detection engine: Faster / Mask R-CNN R50-FPN fine-tuned from exported weights (no detectron2)."""
