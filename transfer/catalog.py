"""The standard datasets of the transfer tasks: where each sits under a data root (the official on-disk layouts),
their class names, and the one error raised for a missing or malformed dataset."""

from __future__ import annotations

from core.cli import UserError
from transfer.registry import DatasetLayout


class DatasetError(UserError, FileNotFoundError, ValueError):
    """A dataset root, split file, annotation or image is missing or malformed; the message names it."""


class UnreadableImageError(DatasetError):
    """An image file cannot be decoded.

    A DataLoader worker re-raises its exception in the main process as ``type(message)`` with the worker's
    whole traceback as the message; this class keeps only its own (last) line, so the CLI prints one line.
    """

    def __init__(self, message: str) -> None:
        own_line = f"{type(self).__name__}: "
        if "\nOriginal Traceback" in message and own_line in message:
            message = message.rsplit(own_line, 1)[1].strip()
        super().__init__(message)


VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog",
    "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

VOC2007 = DatasetLayout("voc2007", ("VOCdevkit/VOC2007", "VOC2007"),
                        ("Annotations", "JPEGImages", "ImageSets/Main/trainval.txt", "ImageSets/Main/test.txt"))
VOC2012 = DatasetLayout("voc2012", ("VOCdevkit/VOC2012", "VOC2012"),
                        ("Annotations", "JPEGImages", "ImageSets/Main/trainval.txt"))
COCO2014 = DatasetLayout("coco2014", ("coco", "COCO"), ("annotations/instances_train2014.json",
                                                        "annotations/instances_val2014.json", "train2014", "val2014"))
COCO2017 = DatasetLayout("coco2017", ("coco", "COCO"), ("annotations/instances_train2017.json",
                                                        "annotations/instances_val2017.json", "train2017", "val2017"))
PLACES205 = DatasetLayout("places205", ("places205", "Places205"), ("trainvalsplit_places205/train_places205.csv",
                                                                     "trainvalsplit_places205/val_places205.csv"))
PLACES365 = DatasetLayout("places365", ("places365", "Places365"), ("categories_places365.txt",
                                                                     "places365_train_standard.txt",
                                                                     "places365_val.txt"))
INAT2018 = DatasetLayout("inat2018", ("inat2018", "iNaturalist2018", "inaturalist"), ("train2018.json", "val2018.json"))
IMAGENET = DatasetLayout("imagenet", ("imagenet", "ImageNet", "ILSVRC2012"), ("train", "val"))
# The array data sets as torchvision downloads them (read by core.image_arrays), directly under the data root or
# in a folder of their own name.
CIFAR10 = DatasetLayout("cifar10", ("cifar-10-batches-py", "cifar10/cifar-10-batches-py"),
                        ("data_batch_1", "data_batch_5", "test_batch", "batches.meta"))
CIFAR100 = DatasetLayout("cifar100", ("cifar-100-python", "cifar100/cifar-100-python"), ("train", "test", "meta"))
STL10 = DatasetLayout("stl10", ("stl10_binary", "stl10/stl10_binary"),
                      ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "class_names.txt"))
