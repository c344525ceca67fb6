"""Raw ceiling baseline: bare websockets server fed by Redis pub/sub, no Django."""
