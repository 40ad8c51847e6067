# dycl_jax host program for SkipGate.forward (rewrite/dynamic_models.py:44)
def forward(self, x):
    # _region_0: rewrite/dynamic_models.py:45-46
    _t_0, s = _region_0(self, x)
    if _dy.truth(_t_0):
        # _region_1: rewrite/dynamic_models.py:47-47
        x, = _region_1(self, x)
    else:
        # _region_2: rewrite/dynamic_models.py:48-48
        _t_1, = _region_2(s)
        if _dy.truth(_t_1):
            # _region_3: rewrite/dynamic_models.py:49-49
            x, = _region_3(self, x)
        else:
            # _region_4: rewrite/dynamic_models.py:51-51
            x, = _region_4(x)
    return x
