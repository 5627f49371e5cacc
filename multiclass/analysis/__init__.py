"""Error analysis of a finished run or a k-fold sweep (`multiclass-analyze`): the class pairs
most confused, the examples with the highest loss, and the examples whose labels look wrong,
written into the directory's analysis/ folder as tables, pictures and a page."""
