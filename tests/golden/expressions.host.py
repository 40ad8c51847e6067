# dycl_jax host program for Expressions.forward (rewrite/dynamic_models.py:+0)
def forward(self, x, scale: float=1.0):
    # _region_9: rewrite/dynamic_models.py:+1-+6, one graph with the if at rewrite/dynamic_models.py:+3, rewrite/dynamic_models.py:+4 (on the host: _region_9_host)
    z, _t_6 = _region_9(scale, self, x)
    _t_7 = not _dy.truth(_t_6)
    # _region_10: rewrite/dynamic_models.py:+7-+8, one graph with the if at rewrite/dynamic_models.py:+6 (on the host: _region_10_host)
    z, acc = _region_10(_t_7, scale, z)
    for i in range(3):
        # _region_7: rewrite/dynamic_models.py:+10-+10
        _t_8, = _region_7(i, z)
        if _dy.truth(_t_8):
            continue
        # _region_8: rewrite/dynamic_models.py:+12-+12
        acc, = _region_8(acc, i, z)
    return (z, acc)


# what _region_9 computes in one graph, run on the host where it cannot
def _region_9_host(scale, self, x):
    # _region_0: rewrite/dynamic_models.py:+1-+3
    _t_1, y = _region_0(scale, self, x)
    if _dy.truth(_t_1):
        _t_0 = y
    else:
        # _region_1: rewrite/dynamic_models.py:+3-+3
        _t_2, = _region_1(y)
        _t_0 = _t_2
    z = _t_0
    _t_3 = self.use_gate
    if _dy.truth(_t_3):
        # _region_2: rewrite/dynamic_models.py:+4-+4
        _t_4, = _region_2(y)
        _t_3 = _t_4
    if _dy.truth(_t_3):
        # _region_3: rewrite/dynamic_models.py:+5-+5
        z, = _region_3(z)
    # _region_4: rewrite/dynamic_models.py:+6-+6
    _t_6, = _region_4(y)
    return (z, _t_6, )


# what _region_10 computes in one graph, run on the host where it cannot
def _region_10_host(_t_7, scale, z):
    _t_5 = _t_7
    if not _dy.truth(_t_5):
        _t_5 = scale > 2
    if _dy.truth(_t_5):
        # _region_5: rewrite/dynamic_models.py:+7-+7
        z, = _region_5(z)
    # _region_6: rewrite/dynamic_models.py:+8-+8
    acc, = _region_6(z)
    return (z, acc, )
