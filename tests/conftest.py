"""Suite-wide test settings: CPU only, deterministic, and light on the 2-core CI machine."""

import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402  (after the environment is set)

torch.set_num_threads(1)
