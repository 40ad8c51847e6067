# dycl_jax host program for SkipGate.forward (rewrite/dynamic_models.py:+0)
def forward(self, x):
    # _region_0: rewrite/dynamic_models.py:+1-+2
    _t_0, s = _region_0(self, x)
    if _dy.truth(_t_0):
        # _region_1: rewrite/dynamic_models.py:+3-+3
        x, = _region_1(self, x)
    else:
        # _region_2: rewrite/dynamic_models.py:+4-+4
        _t_1, = _region_2(s)
        if _dy.truth(_t_1):
            # _region_3: rewrite/dynamic_models.py:+5-+5
            x, = _region_3(self, x)
        else:
            # _region_4: rewrite/dynamic_models.py:+7-+7
            x, = _region_4(x)
    return x
