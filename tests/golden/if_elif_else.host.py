# dycl_jax host program for SkipGate.forward (rewrite/dynamic_models.py:+0)
def forward(self, x):
    # _region_6: rewrite/dynamic_models.py:+1-+7, one graph with the if at rewrite/dynamic_models.py:+2, rewrite/dynamic_models.py:+4 (on the host: _region_6_host)
    x, = _region_6(self, x)
    return x


# what _region_5 computes in one graph, run on the host where it cannot
def _region_5_host(s, self, x):
    # _region_2: rewrite/dynamic_models.py:+4-+4
    _t_1, = _region_2(s)
    if _dy.truth(_t_1):
        # _region_3: rewrite/dynamic_models.py:+5-+5
        x, = _region_3(self, x)
    else:
        # _region_4: rewrite/dynamic_models.py:+7-+7
        x, = _region_4(x)
    return (x, )


# what _region_6 computes in one graph, run on the host where it cannot
def _region_6_host(self, x):
    # _region_0: rewrite/dynamic_models.py:+1-+2
    _t_0, s = _region_0(self, x)
    if _dy.truth(_t_0):
        # _region_1: rewrite/dynamic_models.py:+3-+3
        x, = _region_1(self, x)
    else:
        # _region_5: rewrite/dynamic_models.py:+4-+7, one graph with the if at rewrite/dynamic_models.py:+4 (on the host: _region_5_host)
        x, = _region_5(s, self, x)
    return (x, )
