"""Building blocks that several task folders share (a task folder never imports another one)."""
