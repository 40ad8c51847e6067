# dycl_jax host program for EarlyExit.forward (rewrite/dynamic_models.py:+0)
def forward(self, x):
    outs = []
    for i, blk in enumerate(self.blocks):
        # _region_0: rewrite/dynamic_models.py:+3-+5
        conf, logits, x = _region_0(blk, x, i, self)
        outs.append(logits)
        _t_0 = _dy.item(conf)
        if _t_0 > self.threshold:
            return (logits, i)
    # _region_1: rewrite/dynamic_models.py:+9-+9
    _t_1, = _region_1(outs)
    return (_t_1, -1)
