"""The recommendation API (FastAPI). Importing any part of it sets BLAS and OpenMP to one
thread before numpy or faiss load their libraries: concurrency comes from requests, not from
one product. faiss bundles an OpenMP OpenBLAS, which reads ``OMP_NUM_THREADS``."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
