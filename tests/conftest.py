"""Suite-wide settings: one torch thread per test process (pytest-xdist runs two processes on 2 cores)."""
import matplotlib
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)
