# dycl_jax host program for Halting.forward (rewrite/dynamic_models.py:+0)
def forward(self, x):
    # _region_0: rewrite/dynamic_models.py:+1-+2
    h, total = _region_0(x)
    steps = 0
    while True:
        # _region_1: rewrite/dynamic_models.py:+4-+4
        _t_0, = _region_1(total)
        if not _dy.truth(_t_0):
            break
        # _region_2: rewrite/dynamic_models.py:+5-+6
        h, total = _region_2(h, self, x, total)
        steps += 1
        if steps >= self.max_steps:
            break
    return (h, steps)
