"""dycl_jax: run PyTorch dynamic neural networks on JAX/XLA by program rewriting."""
