# dycl_jax host program for NestedSkip.forward (rewrite/dynamic_models.py:+0)
def forward(self, x):
    for blk in self.blocks:
        _t_0 = _dy.call(blk, x)
        x = _t_0
    # _region_0: rewrite/dynamic_models.py:+3-+3
    _t_1, = _region_0(self, x)
    return {'logits': _t_1, 'features': x}


# dycl_jax host program for GatedBlock.forward (rewrite/dynamic_models.py:+-14)  (shared by 4 instances)
def forward(self, x):
    # _region_0: rewrite/dynamic_models.py:+-13-+-13
    _t_0, = _region_0(self, x)
    _t_1 = _dy.item(_t_0)
    if _t_1 > 0.5:
        # _region_1: rewrite/dynamic_models.py:+-12-+-12
        _t_2, = _region_1(self, x)
        return _t_2
    return x
