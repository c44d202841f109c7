"""Whether torch's OpenMP threads spin while the main thread idles, under a wait policy.

    python benchmarks/omp_wait.py            # the OpenMP runtime's default
    python benchmarks/omp_wait.py PASSIVE    # what the gankit CLI sets (OMP_WAIT_POLICY)

300 two-thread 256x256 matrix products, each followed by a 2 ms sleep of the main thread.
CPU time far above the products' own shows the worker spinning through the sleeps. The policy
is set before torch is imported: libgomp reads it once, when it loads.
"""
import os
import sys
import time

if len(sys.argv) > 1:
    os.environ["OMP_WAIT_POLICY"] = sys.argv[1]

import torch  # noqa: E402

torch.set_num_threads(2)
a = torch.randn(256, 256)
wall, cpu = time.perf_counter(), time.process_time()
for _ in range(300):
    a @ a
    time.sleep(0.002)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}: wall {wall:.2f} s, CPU {cpu:.2f} s")
