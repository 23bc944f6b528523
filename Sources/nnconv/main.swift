print("nnconv: not yet implemented")
