"""Benchmark harness: PyTorch eager vs torch.compile vs torch.jit.script vs dycl_jax on the zoo.

    python -m bench.run                      # every zoo model, size small, batch 1 and 8
    python -m bench.run --models branchy,sdn_vgg16 --quick

See bench/README.md for what is measured and how.
"""
